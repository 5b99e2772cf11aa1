"""Auditor sessions: the server side of every auditor JWT (its `sid`), so a customer can
withdraw an auditor on the next request; invitations record who revoked them.

Auditor JWTs minted before this revision carry no `sid` and are refused from now on: the
auditor asks for a new invitation.

Revision ID: 0009_auditor_sessions
Revises: 0008_evidence_pages
Create Date: 2026-12-06 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_auditor_sessions'
down_revision = '0008_evidence_pages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('auditor_invitation',
                  sa.Column('revoked_by', sa.String(length=400), nullable=True))
    op.create_table('auditor_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('audit_id', sa.String(length=64), nullable=False),
    sa.Column('invitation_id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('writes_ended_at', sa.DateTime(timezone=True), nullable=True,
              comment='from then on the session reads only (the audit was complete)'),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=400), nullable=True),
    sa.Column('revoked_reason', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['audit_id'], ['audit.id'], ),
    sa.ForeignKeyConstraint(['invitation_id'], ['auditor_invitation.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_auditor_session_audit_id'), 'auditor_session', ['audit_id'],
                    unique=False)
    op.create_index(op.f('ix_auditor_session_invitation_id'), 'auditor_session',
                    ['invitation_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_auditor_session_invitation_id'), table_name='auditor_session')
    op.drop_index(op.f('ix_auditor_session_audit_id'), table_name='auditor_session')
    op.drop_table('auditor_session')
    op.drop_column('auditor_invitation', 'revoked_by')
