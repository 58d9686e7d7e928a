"""audit log of materializations and failures (AuditLog, seed 001)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "AuditLog",
        sa.Column("RecordID", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("AssetKey", sa.Unicode(length=255), nullable=False),
        sa.Column("SourceTable", sa.Unicode(length=255), nullable=False),
        sa.Column(
            "LoadTimestamp",
            sa.DateTime().with_variant(mssql.DATETIME2(), "mssql"),
            nullable=False,
        ),
        sa.Column("ProcessedBy", sa.Unicode(length=255), nullable=False),
        sa.Column("ProcessingTime", sa.Float(), nullable=False),
        sa.Column("Status", sa.Unicode(length=16), nullable=False),
        sa.Column("RowCount", sa.BigInteger(), nullable=True),
        sa.Column("ErrorDetails", sa.Unicode(), nullable=True),
        sa.Column("JobRunID", sa.Unicode(length=64), nullable=False),
        sa.PrimaryKeyConstraint("RecordID"),
    )
    op.create_index("IX_AuditLog_LoadTimestamp", "AuditLog", ["LoadTimestamp"], unique=False)


def downgrade() -> None:
    op.drop_index("IX_AuditLog_LoadTimestamp", table_name="AuditLog")
    op.drop_table("AuditLog")
