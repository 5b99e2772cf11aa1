"""The web console's sign-in: single-use login links and server-side sessions (both stored as
SHA-256 digests of their secrets).

Revision ID: 0011_console
Revises: 0008_evidence_pages
Create Date: 2026-12-06 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_console'
down_revision = '0008_evidence_pages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_login_link',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index(op.f('ix_console_login_link_account_id'), 'console_login_link',
                    ['account_id'], unique=False)
    op.create_table('console_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('login_link_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['login_link_id'], ['console_login_link.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_console_session_account_id'), 'console_session', ['account_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_console_session_account_id'), table_name='console_session')
    op.drop_table('console_session')
    op.drop_index(op.f('ix_console_login_link_account_id'), table_name='console_login_link')
    op.drop_table('console_login_link')
