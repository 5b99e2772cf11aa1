"""Uploads never verified expire: evidence_object status 'expired' and an index to find them.

Revision ID: 0007_upload_expiry
Revises: 0001 (after 0004, which creates evidence_object)
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_upload_expiry'
down_revision = '0001'
branch_labels = None
depends_on = '0004'

UNVERIFIED = sa.text("status IN ('pending', 'mismatched', 'rejected')")


def upgrade() -> None:
    # PostgreSQL 12+ adds an enum value inside a transaction; it is not used in this one.
    op.execute("ALTER TYPE evidence_object_status ADD VALUE IF NOT EXISTS 'expired'")
    op.create_index('ix_evidence_object_unverified', 'evidence_object', ['created_at'],
                    unique=False, postgresql_where=UNVERIFIED)


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; expired rows stay readable as such.
    op.drop_index('ix_evidence_object_unverified', table_name='evidence_object',
                  postgresql_where=UNVERIFIED)
