"""Stored answers of conditional requests per connection (GitHub ETags), so a new worker
process still sends If-None-Match.

Revision ID: 0016_conditional_cache
Revises: 0011_console
Create Date: 2026-12-06 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0016_conditional_cache'
down_revision = '0011_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conditional_cache',
    sa.Column('connection_id', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('etag', sa.Text(), nullable=False),
    sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('stored_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', 'url')
    )


def downgrade() -> None:
    op.drop_table('conditional_cache')
