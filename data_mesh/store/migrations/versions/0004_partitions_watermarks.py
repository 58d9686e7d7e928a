"""daily partitions of DataSets (seed 002) and ingestion watermarks (seed 001)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("DataSets") as batch:
        batch.add_column(sa.Column("PartitionColumn", sa.Unicode(length=128), nullable=True))
        batch.add_column(sa.Column("PartitionStart", sa.Date(), nullable=True))
        batch.add_column(sa.Column("RetentionDays", sa.Integer(), nullable=True))
    op.create_table(
        "IngestionWatermarks",
        sa.Column("DataSetID", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("WatermarkColumn", sa.Unicode(length=128), nullable=False),
        sa.Column("WatermarkValue", sa.Unicode(length=64), nullable=False),
        sa.Column(
            "UpdatedAt",
            sa.DateTime().with_variant(mssql.DATETIME2(), "mssql"),
            nullable=False,
        ),
        sa.Column("RunID", sa.Unicode(length=64), nullable=False),
        sa.PrimaryKeyConstraint("DataSetID"),
    )


def downgrade() -> None:
    op.drop_table("IngestionWatermarks")
    with op.batch_alter_table("DataSets") as batch:
        batch.drop_column("RetentionDays")
        batch.drop_column("PartitionStart")
        batch.drop_column("PartitionColumn")
