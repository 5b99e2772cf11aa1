"""Initial schema: accounts, connections, sync runs, evidence with versions, control results.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 09:10:21.409409
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('connection',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('integration_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('pending', 'active', 'error', 'disconnected', name='connection_status'), nullable=False),
    sa.Column('status_message', sa.Text(), nullable=True),
    sa.Column('sync_frequency', sa.Enum('hourly', 'daily', 'weekly', name='sync_frequency'), nullable=False),
    sa.Column('credentials_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('next_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('disconnected_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_connection_account_id'), 'connection', ['account_id'], unique=False)
    op.create_index('ix_connection_due', 'connection', ['next_sync_at'], unique=False, postgresql_where=sa.text("status = 'active'"))
    op.create_index('uq_connection_live', 'connection', ['account_id', 'integration_id'], unique=True, postgresql_where=sa.text("status <> 'disconnected'"))
    op.create_table('control_result',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('framework_id', sa.String(length=32), nullable=False),
    sa.Column('control_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.Enum('passing', 'failing', 'error', 'not_evaluated', name='control_status'), nullable=False),
    sa.Column('passing', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'framework_id', 'control_id')
    )
    op.create_table('control_result_history',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('framework_id', sa.String(length=32), nullable=False),
    sa.Column('control_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.Enum('passing', 'failing', 'error', 'not_evaluated', name='control_status'), nullable=False),
    sa.Column('passing', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_control_history_lookup', 'control_result_history', ['account_id', 'framework_id', 'control_id', 'evaluated_at'], unique=False)
    op.create_table('check_state',
    sa.Column('connection_id', sa.String(length=64), nullable=False),
    sa.Column('check_id', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('set_hash', sa.String(length=64), nullable=False),
    sa.Column('resource_count', sa.Integer(), nullable=False),
    sa.Column('last_verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ),
    sa.PrimaryKeyConstraint('connection_id', 'check_id')
    )
    op.create_table('evidence',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('connection_id', sa.String(length=64), nullable=False),
    sa.Column('check_id', sa.String(length=200), nullable=False),
    sa.Column('resource_id', sa.Text(), nullable=False),
    sa.Column('resource_type', sa.String(length=100), nullable=False),
    sa.Column('status', sa.Enum('passing', 'failing', 'error', 'not_applicable', name='evidence_status'), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('connection_id', 'check_id', 'resource_id', name='uq_evidence_resource')
    )
    op.create_index('ix_evidence_account_status', 'evidence', ['account_id', 'status'], unique=False)
    op.create_table('sync_run',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('connection_id', sa.String(length=64), nullable=False),
    sa.Column('trigger', sa.Enum('manual', 'scheduled', 'config_change', 'connect', name='sync_trigger'), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'partial', 'failed', 'cancelled', name='sync_status'), nullable=False),
    sa.Column('evidence_count', sa.Integer(), nullable=False),
    sa.Column('changed_count', sa.Integer(), nullable=False),
    sa.Column('checks_errored', sa.Integer(), nullable=False),
    sa.Column('errors', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_sync_run_account_id'), 'sync_run', ['account_id'], unique=False)
    op.create_index('ix_sync_run_connection_queued', 'sync_run', ['connection_id', 'queued_at'], unique=False)
    op.create_index('uq_sync_run_open', 'sync_run', ['connection_id'], unique=True, postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.create_table('evidence_version',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('evidence_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('change', sa.Enum('created', 'changed', 'closed', name='evidence_change'), nullable=False),
    sa.Column('status', sa.Enum('passing', 'failing', 'error', 'not_applicable', name='evidence_status'), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_evidence_version_evidence_id'), 'evidence_version', ['evidence_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_evidence_version_evidence_id'), table_name='evidence_version')
    op.drop_table('evidence_version')
    op.drop_index('uq_sync_run_open', table_name='sync_run', postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.drop_index('ix_sync_run_connection_queued', table_name='sync_run')
    op.drop_index(op.f('ix_sync_run_account_id'), table_name='sync_run')
    op.drop_table('sync_run')
    op.drop_index('ix_evidence_account_status', table_name='evidence')
    op.drop_table('evidence')
    op.drop_table('check_state')
    op.drop_index('ix_control_history_lookup', table_name='control_result_history')
    op.drop_table('control_result_history')
    op.drop_table('control_result')
    op.drop_index('uq_connection_live', table_name='connection', postgresql_where=sa.text("status <> 'disconnected'"))
    op.drop_index('ix_connection_due', table_name='connection', postgresql_where=sa.text("status = 'active'"))
    op.drop_index(op.f('ix_connection_account_id'), table_name='connection')
    op.drop_table('connection')
    op.drop_table('account')
    for enum in ('connection_status', 'sync_frequency', 'control_status', 'evidence_status',
                 'sync_trigger', 'sync_status', 'evidence_change'):
        op.execute(f'DROP TYPE IF EXISTS {enum}')
