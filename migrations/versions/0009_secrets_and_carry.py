"""operators' TOTP secrets encrypted at rest; position carry-forward of archived executions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 10:00:00

- operators.totp_secret holds `v1:<key id>:<ciphertext>` (oms.secret_key) instead of the base32
  secret: the column is widened (PostgreSQL; SQLite does not enforce lengths) and every secret
  still in clear is encrypted here, with the key kept outside the database (TIEOUT_SECRET_KEY,
  TIEOUT_KEY_FILE, else the default key file, created now if there is none). No clear secret is
  left after the upgrade; the downgrade decrypts them again (it needs the key too).
- position_carry_forward (append-only): what archived executions realized per account and symbol.
"""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import oms.schema
from migrations.triggers import append_only_triggers, drop_append_only_triggers
from oms import secret_key

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("position_carry_forward",)


def _operators(bind: sa.Connection) -> list[tuple[str, str]]:
    return [(str(n), str(s)) for n, s in bind.exec_driver_sql(
        "SELECT name, totp_secret FROM operators ORDER BY name")]


def _set_secret(bind: sa.Connection, name: str, value: str) -> None:
    t = sa.table("operators", sa.column("name"), sa.column("totp_secret"))
    bind.execute(t.update().where(t.c.name == name).values(totp_secret=value))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.alter_column("operators", "totp_secret", type_=sa.String(length=200),
                        existing_type=sa.String(length=64), existing_nullable=False)
    clear = [(n, s) for n, s in _operators(bind) if not secret_key.is_encrypted(s)]
    if clear:
        keyring, _ = secret_key.load_or_create(bind.engine.url, datetime.now(UTC))
        for name, secret in clear:
            _set_secret(bind, name, keyring.encrypt(secret, name))
    op.create_table(
        "position_carry_forward",
        sa.Column("carry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("archive_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("realized_pnl", oms.schema.ExactDecimal(), nullable=False),
        sa.Column("commissions", oms.schema.ExactDecimal(), nullable=False),
        sa.Column("fees", oms.schema.ExactDecimal(), nullable=False),
        sa.Column("fills", sa.Integer(), nullable=False),
        sa.Column("first_trade_date", sa.Date(), nullable=False),
        sa.Column("last_trade_date", sa.Date(), nullable=False),
        sa.Column("created_at", oms.schema.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["archive_id"], ["archives.archive_id"],
                                name=op.f("fk_position_carry_forward_archive_id_archives")),
        sa.ForeignKeyConstraint(["account"], ["accounts.account_id"],
                                name=op.f("fk_position_carry_forward_account_accounts")),
        sa.PrimaryKeyConstraint("carry_id", name=op.f("pk_position_carry_forward")),
    )
    with op.batch_alter_table("position_carry_forward", schema=None) as batch_op:
        batch_op.create_index("ix_position_carry_forward_account", ["account", "symbol"],
                              unique=False)
    append_only_triggers(bind, TABLES)


def downgrade() -> None:
    bind = op.get_bind()
    drop_append_only_triggers(bind, TABLES)
    with op.batch_alter_table("position_carry_forward", schema=None) as batch_op:
        batch_op.drop_index("ix_position_carry_forward_account")
    op.drop_table("position_carry_forward")
    sealed = [(n, s) for n, s in _operators(bind) if secret_key.is_encrypted(s)]
    if sealed:
        keyring = secret_key.require(bind.engine.url)
        for name, stored in sealed:
            _set_secret(bind, name, keyring.decrypt(stored, name))
    if bind.dialect.name == "postgresql":
        op.alter_column("operators", "totp_secret", type_=sa.String(length=64),
                        existing_type=sa.String(length=200), existing_nullable=False)
