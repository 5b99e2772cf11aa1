"""Scheduling and recovery: connection backoff, when a run was last enqueued, prune index.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-25 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('connection', sa.Column('consecutive_failures', sa.Integer(),
                                          server_default='0', nullable=False))
    op.add_column('sync_run', sa.Column('enqueued_at', sa.DateTime(timezone=True),
                                        nullable=True))
    op.create_index('ix_sync_run_finished_at', 'sync_run', ['finished_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sync_run_finished_at', table_name='sync_run')
    op.drop_column('sync_run', 'enqueued_at')
    op.drop_column('connection', 'consecutive_failures')
