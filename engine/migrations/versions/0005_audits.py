"""Audits: audits, auditor invitations, control reviews, evidence requests, findings, the
append-only activity log (enforced by a trigger), and the outbound mail queue.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-24 09:37:43.162304
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0001'
branch_labels = None
depends_on = None

_ENUMS = ("audit_type", "audit_status", "mail_status", "audit_actor_kind",
          "audit_review_status", "evidence_request_priority", "evidence_request_status",
          "finding_severity", "finding_status")

_APPEND_ONLY = """
CREATE FUNCTION audit_activity_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_activity is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_activity_append_only BEFORE UPDATE OR DELETE ON audit_activity
    FOR EACH ROW EXECUTE FUNCTION audit_activity_append_only();
"""


def upgrade() -> None:
    op.create_table('audit',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('framework_id', sa.String(length=32), nullable=False),
    sa.Column('type', sa.Enum('type_i', 'type_ii', name='audit_type', length=40), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('draft', 'in_progress', 'evidence_review', 'findings', 'complete', name='audit_status', length=40), nullable=False),
    sa.Column('target_completion', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('evidence_review_at', sa.DateTime(timezone=True), nullable=True, comment='when the audit entered evidence_review: the moment its evidence is frozen'),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_account_created', 'audit', ['account_id', 'created_at'], unique=False)
    op.create_table('outbound_mail',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=True),
    sa.Column('to_address', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('status', sa.Enum('queued', 'sent', 'failed', name='mail_status', length=40), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('audit_activity',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('audit_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('actor_kind', sa.Enum('customer', 'auditor', name='audit_actor_kind', length=40), nullable=False),
    sa.Column('actor', sa.String(length=400), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('control_id', sa.String(length=32), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['audit_id'], ['audit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_activity_audit', 'audit_activity', ['audit_id', 'id'], unique=False)
    op.execute(_APPEND_ONLY)
    op.create_table('audit_control',
    sa.Column('audit_id', sa.String(length=64), nullable=False),
    sa.Column('control_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('pending', 'passed', 'failed', 'needs_evidence', name='audit_review_status', length=40), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('evidence_sufficient', sa.Boolean(), nullable=True),
    sa.Column('reviewed_by', sa.String(length=400), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['audit_id'], ['audit.id'], ),
    sa.PrimaryKeyConstraint('audit_id', 'control_id')
    )
    op.create_table('auditor_invitation',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('audit_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('firm', sa.String(length=200), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by', sa.String(length=200), nullable=False),
    sa.Column('mail_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['audit_id'], ['audit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index(op.f('ix_auditor_invitation_audit_id'), 'auditor_invitation', ['audit_id'], unique=False)
    op.create_table('evidence_request',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('audit_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('control_id', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('priority', sa.Enum('low', 'medium', 'high', 'critical', name='evidence_request_priority', length=40), nullable=False),
    sa.Column('status', sa.Enum('open', 'responded', name='evidence_request_status', length=40), nullable=False),
    sa.Column('requested_by', sa.String(length=400), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('response_url', sa.Text(), nullable=True),
    sa.Column('response_pushed_id', sa.String(length=64), nullable=True),
    sa.Column('response_sha256', sa.String(length=64), nullable=True),
    sa.Column('response_sha256_verified', sa.Boolean(), nullable=True, comment='true: the engine hashed the object; false: the customer declared it'),
    sa.Column('response_note', sa.Text(), nullable=True),
    sa.Column('responded_by', sa.String(length=200), nullable=True),
    sa.Column('responded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['audit_id'], ['audit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_evidence_request_audit_id'), 'evidence_request', ['audit_id'], unique=False)
    op.create_table('finding',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('audit_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('control_id', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.Enum('critical', 'major', 'minor', 'observation', name='finding_severity', length=40), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('remediation', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('open', 'in_progress', 'resolved', 'accepted', name='finding_status', length=40), nullable=False),
    sa.Column('created_by', sa.String(length=400), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['audit_id'], ['audit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_finding_audit_id'), 'finding', ['audit_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_finding_audit_id'), table_name='finding')
    op.drop_table('finding')
    op.drop_index(op.f('ix_evidence_request_audit_id'), table_name='evidence_request')
    op.drop_table('evidence_request')
    op.drop_index(op.f('ix_auditor_invitation_audit_id'), table_name='auditor_invitation')
    op.drop_table('auditor_invitation')
    op.drop_table('audit_control')
    op.drop_index('ix_audit_activity_audit', table_name='audit_activity')
    op.drop_table('audit_activity')
    op.execute("DROP FUNCTION IF EXISTS audit_activity_append_only()")
    op.drop_table('outbound_mail')
    op.drop_index('ix_audit_account_created', table_name='audit')
    op.drop_table('audit')
    for name in _ENUMS:
        op.execute(f"DROP TYPE IF EXISTS {name}")
