"""`evidence db upgrade`: apply the Alembic migrations shipped in engine/migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from engine.settings import Settings


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", settings.sqlalchemy_url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "heads") -> None:
    command.upgrade(alembic_config(settings), revision)
