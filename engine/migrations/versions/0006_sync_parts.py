"""Fan-out of one run over the worker pool: sync_run.parts and the sync_part table.

Revision ID: 0006_sync_parts
Revises: 0001
Create Date: 2026-11-24 14:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006_sync_parts'
down_revision = '0001'
branch_labels = None
depends_on = None

STATUS = postgresql.ENUM('queued', 'running', 'succeeded', 'partial', 'failed', 'cancelled',
                         name='sync_status', create_type=False)


def upgrade() -> None:
    op.add_column('sync_run', sa.Column('parts', sa.Integer(), server_default='0',
                                        nullable=False))
    op.create_table(
        'sync_part',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('part_no', sa.Integer(), nullable=False),
        sa.Column('check_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('sharded', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('staged', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('status', STATUS, nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=200), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('evidence_count', sa.Integer(), nullable=False),
        sa.Column('changed_count', sa.Integer(), nullable=False),
        sa.Column('checks_errored', sa.Integer(), nullable=False),
        sa.Column('checks_crashed', sa.Integer(), nullable=False),
        sa.Column('errors', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['sync_run.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('run_id', 'part_no', name='uq_sync_part'),
    )
    op.create_index('ix_sync_part_open', 'sync_part', ['status'], unique=False,
                    postgresql_where=sa.text("status IN ('queued', 'running')"))


def downgrade() -> None:
    op.drop_index('ix_sync_part_open', table_name='sync_part',
                  postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.drop_table('sync_part')
    op.drop_column('sync_run', 'parts')
