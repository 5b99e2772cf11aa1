"""The tamper-evident ledger: a per-account hash chain that refuses UPDATE, DELETE and TRUNCATE
(triggers), its head row (the append lock), signed checkpoints and the sealed signing key.

Revision ID: 0012_ledger
Revises: 0011_console
Create Date: 2026-12-06 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_ledger'
down_revision = '0011_console'
branch_labels = None
depends_on = None

REFUSE = """
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the ledger is a hash chain; run `evidence ledger verify`';
END
$$
"""


def upgrade() -> None:
    op.create_table('ledger_entry',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('prev_sha256', sa.String(length=64), nullable=False),
    sa.Column('entry_sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'seq')
    )
    op.create_table('ledger_head',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('entry_sha256', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('ledger_checkpoint',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('length', sa.BigInteger(), nullable=False),
    sa.Column('head_sha256', sa.String(length=64), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('audit_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_ledger_checkpoint_account', 'ledger_checkpoint',
                    ['account_id', 'signed_at'], unique=False)
    op.create_table('ledger_signing_key',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute(REFUSE)
    op.execute("CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry "
               "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()")
    op.execute("CREATE TRIGGER ledger_entry_no_truncate BEFORE TRUNCATE ON ledger_entry "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()")


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_entry_no_truncate ON ledger_entry")
    op.execute("DROP TRIGGER ledger_entry_append_only ON ledger_entry")
    op.execute("DROP FUNCTION ledger_refuse_change()")
    op.drop_table('ledger_signing_key')
    op.drop_index('ix_ledger_checkpoint_account', table_name='ledger_checkpoint')
    op.drop_table('ledger_checkpoint')
    op.drop_table('ledger_head')
    op.drop_table('ledger_entry')
