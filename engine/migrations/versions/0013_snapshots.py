"""Stored collector snapshots (content-addressed), their validity intervals, judgements, and
the check version and snapshot each evidence row, version and check state was judged from.

Revision ID: 0013_snapshots
Revises: 0011_console
Create Date: 2026-12-06 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0013_snapshots'
down_revision = '0011_console'
branch_labels = None
depends_on = None

_STATUS = postgresql.ENUM('passing', 'failing', 'error', 'not_applicable',
                          name='evidence_status', create_type=False)


def upgrade() -> None:
    op.execute("ALTER TYPE evidence_change ADD VALUE IF NOT EXISTS 'rejudged'")
    kind = postgresql.ENUM('snapshot', 'manifest', name='snapshot_kind')
    kind.create(op.get_bind(), checkfirst=True)
    op.create_table('collector_snapshot',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('kind', postgresql.ENUM(name='snapshot_kind', create_type=False), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('stored_size', sa.BigInteger(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.Column('object_key', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'sha256')
    )
    op.create_table('snapshot_seen',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('connection_id', sa.String(length=64), nullable=False),
    sa.Column('collector', sa.String(length=200), nullable=False),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('uq_snapshot_seen_current', 'snapshot_seen',
                    ['connection_id', 'collector', 'scope'], unique=True,
                    postgresql_where=sa.text('valid_to IS NULL'))
    op.create_index('ix_snapshot_seen_lookup', 'snapshot_seen',
                    ['connection_id', 'collector', 'valid_from'])
    op.create_index('ix_snapshot_seen_sha', 'snapshot_seen', ['account_id', 'sha256'])
    op.create_table('judgement',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('connection_id', sa.String(length=64), nullable=False),
    sa.Column('check_id', sa.String(length=200), nullable=False),
    sa.Column('resource_id', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('old_status', _STATUS, nullable=True),
    sa.Column('new_status', _STATUS, nullable=True),
    sa.Column('old_check_version', sa.Integer(), nullable=True),
    sa.Column('new_check_version', sa.Integer(), nullable=False),
    sa.Column('snapshot_sha256', sa.String(length=64), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('judged_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_judgement_lookup', 'judgement', ['connection_id', 'check_id',
                                                         'valid_from'])
    for table in ('evidence', 'evidence_version', 'check_state'):
        op.add_column(table, sa.Column('check_version', sa.Integer(), server_default='1',
                                       nullable=False))
        op.add_column(table, sa.Column('snapshot_sha256', sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ('evidence', 'evidence_version', 'check_state'):
        op.drop_column(table, 'snapshot_sha256')
        op.drop_column(table, 'check_version')
    op.drop_index('ix_judgement_lookup', table_name='judgement')
    op.drop_table('judgement')
    op.drop_index('ix_snapshot_seen_sha', table_name='snapshot_seen')
    op.drop_index('ix_snapshot_seen_lookup', table_name='snapshot_seen')
    op.drop_index('uq_snapshot_seen_current', table_name='snapshot_seen')
    op.drop_table('snapshot_seen')
    op.drop_table('collector_snapshot')
    postgresql.ENUM(name='snapshot_kind').drop(op.get_bind(), checkfirst=True)
    # evidence_change keeps 'rejudged': Postgres cannot drop an enum value
