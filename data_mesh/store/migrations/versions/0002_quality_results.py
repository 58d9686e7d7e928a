"""quality rule results history (DataQualityResults)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "DataQualityResults",
        sa.Column("ResultID", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("RuleID", sa.Integer(), nullable=False),
        sa.Column("RuleName", sa.Unicode(length=255), nullable=False),
        sa.Column("DataSetID", sa.Integer(), nullable=False),
        sa.Column("DataSetName", sa.Unicode(length=255), nullable=False),
        sa.Column("RunID", sa.Unicode(length=64), nullable=False),
        sa.Column(
            "EvaluatedAt",
            sa.DateTime().with_variant(mssql.DATETIME2(), "mssql"),
            nullable=False,
        ),
        sa.Column("Passed", sa.Boolean(), nullable=False),
        sa.Column("Severity", sa.Unicode(length=8), nullable=False),
        sa.Column("TotalRows", sa.BigInteger(), nullable=False),
        sa.Column("FailingRows", sa.BigInteger(), nullable=True),
        sa.Column("FailingPercent", sa.Float(), nullable=True),
        sa.Column("Threshold", sa.Unicode(length=64), nullable=False),
        sa.Column("Observed", sa.Unicode(), nullable=False),
        sa.PrimaryKeyConstraint("ResultID"),
        sa.UniqueConstraint("RuleID", "RunID", name="UQ_DataQualityResults_Rule_Run"),
    )
    op.create_index(
        "IX_DataQualityResults_Rule_Time",
        "DataQualityResults",
        ["RuleID", "EvaluatedAt"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("IX_DataQualityResults_Rule_Time", table_name="DataQualityResults")
    op.drop_table("DataQualityResults")
