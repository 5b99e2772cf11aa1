"""Leases for the tasks that move state without a run row: verify, mail, upload expiry.

A `task_lease` row holds the worker and heartbeat of a connection's verification, a mail's
sending or the upload expiry, so the reaper brings a killed worker's task back within the
lease staleness instead of the broker's visibility timeout. Connections pending and mail
queued at upgrade get a queued lease, so the reaper sends their task again if it was lost.

Revision ID: 0010_task_leases
Revises: 0008_evidence_pages (after 0005, which creates outbound_mail)
Create Date: 2026-12-06 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0010_task_leases'
down_revision = '0008_evidence_pages'
branch_labels = None
depends_on = '0005'


def upgrade() -> None:
    status = postgresql.ENUM('queued', 'running', 'succeeded', 'partial', 'failed', 'cancelled',
                             name='sync_status', create_type=False)
    op.create_table(
        'task_lease',
        sa.Column('id', sa.String(length=200), primary_key=True),
        sa.Column('kind', sa.String(length=100), nullable=False),
        sa.Column('subject_id', sa.String(length=64), nullable=False),
        sa.Column('status', status, nullable=False),
        sa.Column('worker', sa.String(length=200), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=True),
    )
    op.create_index('ix_task_lease_status', 'task_lease', ['status'], unique=False)
    op.execute("INSERT INTO task_lease (id, kind, subject_id, status) "
               "SELECT 'connections.verify:' || id, 'connections.verify', id, 'queued' "
               "FROM connection WHERE status = 'pending'")
    op.execute("INSERT INTO task_lease (id, kind, subject_id, status) "
               "SELECT 'mail.send:' || id, 'mail.send', id, 'queued' "
               "FROM outbound_mail WHERE status = 'queued'")


def downgrade() -> None:
    op.drop_index('ix_task_lease_status', table_name='task_lease')
    op.drop_table('task_lease')
