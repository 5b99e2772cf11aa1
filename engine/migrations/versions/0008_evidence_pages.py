"""Partial covering indexes for pages of current evidence (index-only, then 50 rows by id).

Revision ID: 0008_evidence_pages
Revises: 0001
Create Date: 2026-11-24 14:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_evidence_pages'
down_revision = '0001'
branch_labels = None
depends_on = None

CURRENT = sa.text("closed_at IS NULL")


def upgrade() -> None:
    op.create_index('ix_evidence_current', 'evidence',
                    ['connection_id', 'check_id', 'resource_id'], unique=False,
                    postgresql_include=['id', 'account_id'], postgresql_where=CURRENT)
    op.create_index('ix_evidence_current_status', 'evidence',
                    ['connection_id', 'status', 'check_id', 'resource_id'], unique=False,
                    postgresql_include=['id', 'account_id'], postgresql_where=CURRENT)


def downgrade() -> None:
    op.drop_index('ix_evidence_current_status', table_name='evidence', postgresql_where=CURRENT)
    op.drop_index('ix_evidence_current', table_name='evidence', postgresql_where=CURRENT)
