"""Custom integrations, configuration parameters, OAuth states; connection.config_changed_at.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

INTEGRATION_TYPES = ('COLLECTOR', 'FORWARDER', 'SCANNER', 'CLOUD', 'WEBHOOK', 'API')


def upgrade() -> None:
    op.add_column('connection', sa.Column('config_changed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('custom_integration',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('short_name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('integration_type', sa.Enum(*INTEGRATION_TYPES, name='integration_type'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('needs_restart', sa.Boolean(), nullable=False),
    sa.Column('config_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'short_name', name='uq_custom_integration_short_name')
    )
    op.create_index(op.f('ix_custom_integration_account_id'), 'custom_integration', ['account_id'], unique=False)
    op.create_table('config_parameter',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('connection_id', sa.String(length=64), nullable=True),
    sa.Column('custom_integration_id', sa.BigInteger(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('value_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_secret', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('(connection_id IS NULL) <> (custom_integration_id IS NULL)', name='ck_config_parameter_one_owner'),
    sa.CheckConstraint('(is_secret AND value IS NULL) OR (NOT is_secret AND value_encrypted IS NULL)', name='ck_config_parameter_secret_sealed'),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['custom_integration_id'], ['custom_integration.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_config_parameter_account_id'), 'config_parameter', ['account_id'], unique=False)
    op.create_index('uq_config_parameter_connection_name', 'config_parameter', ['connection_id', 'name'], unique=True, postgresql_where=sa.text('connection_id IS NOT NULL'))
    op.create_index('uq_config_parameter_custom_name', 'config_parameter', ['custom_integration_id', 'name'], unique=True, postgresql_where=sa.text('custom_integration_id IS NOT NULL'))
    op.create_table('oauth_state',
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('integration_id', sa.String(length=64), nullable=False),
    sa.Column('code_verifier_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('sync_frequency', postgresql.ENUM('hourly', 'daily', 'weekly', name='sync_frequency', create_type=False), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('nonce_hash')
    )
    op.create_index(op.f('ix_oauth_state_account_id'), 'oauth_state', ['account_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_oauth_state_account_id'), table_name='oauth_state')
    op.drop_table('oauth_state')
    op.drop_index('uq_config_parameter_custom_name', table_name='config_parameter', postgresql_where=sa.text('custom_integration_id IS NOT NULL'))
    op.drop_index('uq_config_parameter_connection_name', table_name='config_parameter', postgresql_where=sa.text('connection_id IS NOT NULL'))
    op.drop_index(op.f('ix_config_parameter_account_id'), table_name='config_parameter')
    op.drop_table('config_parameter')
    op.drop_index(op.f('ix_custom_integration_account_id'), table_name='custom_integration')
    op.drop_table('custom_integration')
    op.execute('DROP TYPE IF EXISTS integration_type')
    op.drop_column('connection', 'config_changed_at')
