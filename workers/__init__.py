"""Celery workers: configuration, queues and the thin tasks that call the engine."""
