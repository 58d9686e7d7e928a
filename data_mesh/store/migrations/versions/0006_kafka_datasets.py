"""Kafka DataSets: the partitions of the topic a DataSet is published to

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("DataSets") as batch:
        batch.add_column(sa.Column("TopicPartitions", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("DataSets") as batch:
        batch.drop_column("TopicPartitions")
