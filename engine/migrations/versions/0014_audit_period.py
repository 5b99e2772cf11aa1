"""The period of a Type II audit: period_start and period_end (dates; the period runs from
00:00 UTC of the first to 00:00 UTC of the second), both set or neither, start before end, and
only on a type_ii audit.

Revision ID: 0014_audit_period
Revises: 0011_console
Create Date: 2026-12-06 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014_audit_period'
down_revision = '0011_console'
branch_labels = None
depends_on = '0005'  # the audit table


def upgrade() -> None:
    op.add_column('audit', sa.Column(
        'period_start', sa.Date(), nullable=True,
        comment='type_ii: the first day of the period under audit (00:00 UTC)'))
    op.add_column('audit', sa.Column(
        'period_end', sa.Date(), nullable=True,
        comment='type_ii: the period runs up to 00:00 UTC of this day (exclusive)'))
    op.create_check_constraint(
        'ck_audit_period', 'audit',
        "period_start IS NULL AND period_end IS NULL OR "
        "period_start IS NOT NULL AND period_end IS NOT NULL "
        "AND period_start < period_end AND type = 'type_ii'")


def downgrade() -> None:
    op.drop_constraint('ck_audit_period', 'audit', type_='check')
    op.drop_column('audit', 'period_end')
    op.drop_column('audit', 'period_start')
