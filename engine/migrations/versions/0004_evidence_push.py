"""Evidence push: API keys, pushed evidence objects and their lineage to controls.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None

OBJECT_STATUS = ('pending', 'verified', 'duplicate', 'mismatched', 'rejected')


def upgrade() -> None:
    op.create_table('api_key',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_index(op.f('ix_api_key_account_id'), 'api_key', ['account_id'], unique=False)
    op.create_table('evidence_object',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('upload_key', sa.Text(), nullable=False),
    sa.Column('stored_key', sa.Text(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('framework_id', sa.String(length=32), nullable=True),
    sa.Column('control_id', sa.String(length=32), nullable=True),
    sa.Column('status', sa.Enum(*OBJECT_STATUS, name='evidence_object_status'), nullable=False),
    sa.Column('expected_sha256', sa.String(length=64), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('duplicate_of', sa.String(length=64), nullable=True),
    sa.Column('uploaded_by_key_id', sa.String(length=64), nullable=True),
    sa.Column('uploaded_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('upload_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['duplicate_of'], ['evidence_object.id'], ),
    sa.ForeignKeyConstraint(['uploaded_by_key_id'], ['api_key.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('upload_key')
    )
    op.create_index('ix_evidence_object_account_created', 'evidence_object', ['account_id', 'created_at'], unique=False)
    op.create_index('uq_evidence_object_content', 'evidence_object', ['account_id', 'sha256'], unique=True, postgresql_where=sa.text("status = 'verified'"))
    op.create_table('evidence_lineage',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('evidence_object_id', sa.String(length=64), nullable=False),
    sa.Column('framework_id', sa.String(length=32), nullable=False),
    sa.Column('control_id', sa.String(length=32), nullable=False),
    sa.Column('assessment_id', sa.String(length=64), nullable=True),
    sa.Column('linked_by_key_id', sa.String(length=64), nullable=True),
    sa.Column('linked_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['evidence_object_id'], ['evidence_object.id'], ),
    sa.ForeignKeyConstraint(['linked_by_key_id'], ['api_key.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('evidence_object_id', 'framework_id', 'control_id', 'assessment_id', name='uq_evidence_lineage_link', postgresql_nulls_not_distinct=True)
    )
    op.create_index('ix_evidence_lineage_control', 'evidence_lineage', ['account_id', 'framework_id', 'control_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_evidence_lineage_control', table_name='evidence_lineage')
    op.drop_table('evidence_lineage')
    op.drop_index('uq_evidence_object_content', table_name='evidence_object', postgresql_where=sa.text("status = 'verified'"))
    op.drop_index('ix_evidence_object_account_created', table_name='evidence_object')
    op.drop_table('evidence_object')
    op.drop_index(op.f('ix_api_key_account_id'), table_name='api_key')
    op.drop_table('api_key')
    sa.Enum(name='evidence_object_status').drop(op.get_bind(), checkfirst=True)
