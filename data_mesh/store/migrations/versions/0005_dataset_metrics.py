"""metric history of DataSets for anomaly rules and profiles (DataSetMetrics)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "DataSetMetrics",
        sa.Column("MetricID", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("DataSetID", sa.Integer(), nullable=False),
        sa.Column("DataSetName", sa.Unicode(length=255), nullable=False),
        sa.Column("Metric", sa.Unicode(length=255), nullable=False),
        sa.Column("RunID", sa.Unicode(length=64), nullable=False),
        sa.Column("PartitionKey", sa.Unicode(length=64), nullable=True),
        sa.Column(
            "MeasuredAt",
            sa.DateTime().with_variant(mssql.DATETIME2(), "mssql"),
            nullable=False,
        ),
        sa.Column("Value", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("MetricID"),
        sa.UniqueConstraint("DataSetID", "Metric", "RunID", name="UQ_DataSetMetrics_Metric_Run"),
    )
    op.create_index(
        "IX_DataSetMetrics_Metric_Time",
        "DataSetMetrics",
        ["DataSetID", "Metric", "MeasuredAt"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("IX_DataSetMetrics_Metric_Time", table_name="DataSetMetrics")
    op.drop_table("DataSetMetrics")
