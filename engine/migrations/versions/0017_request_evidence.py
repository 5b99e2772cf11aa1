"""Evidence requests answered with collected evidence: one row per item an answer names, the
evidence and its version frozen as they stood when the answer was given.

Revision ID: 0017_request_evidence
Revises: 0011_console (and needs 0005, the audits)
Create Date: 2026-12-06 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0017_request_evidence'
down_revision = '0011_console'
branch_labels = None
depends_on = '0005'  # evidence_request (0005_audits is on another branch)


def upgrade() -> None:
    op.create_table('evidence_request_item',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('evidence_id', sa.BigInteger(), nullable=False),
    sa.Column('version_id', sa.BigInteger(), nullable=False,
              comment='the evidence_version current when the answer was given'),
    sa.Column('connection_id', sa.String(length=64), nullable=False),
    sa.Column('integration_id', sa.String(length=64), nullable=False),
    sa.Column('check_id', sa.String(length=200), nullable=False),
    sa.Column('resource_id', sa.Text(), nullable=False),
    sa.Column('resource_type', sa.String(length=100), nullable=False),
    sa.Column('status', postgresql.ENUM('passing', 'failing', 'error', 'not_applicable',
                                        name='evidence_status', create_type=False),
              nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('collected_at', sa.DateTime(timezone=True), nullable=False,
              comment='when the engine recorded this version of the evidence'),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True,
              comment="the check's last verification before the answer (an unchanged re-sync "
                      "verifies without a new version)"),
    sa.ForeignKeyConstraint(['account_id'], ['account.id']),
    sa.ForeignKeyConstraint(['request_id'], ['evidence_request.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_evidence_request_item_request_id', 'evidence_request_item',
                    ['request_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_evidence_request_item_request_id', table_name='evidence_request_item')
    op.drop_table('evidence_request_item')
