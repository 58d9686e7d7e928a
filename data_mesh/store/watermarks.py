"""Ingestion watermarks in the metadata store: how far each incremental DataSet has been read."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select

from data_mesh.store.rows import store_now
from data_mesh.store.schema import ingestion_watermarks


def read_watermark(engine: Engine, dataset_id: int, column: str) -> str | None:
    """The stored high mark; None before the first load or after the column changed."""
    table = ingestion_watermarks.c
    with engine.connect() as connection:
        row = connection.execute(
            select(table.WatermarkColumn, table.WatermarkValue).where(table.DataSetID == dataset_id)
        ).first()
    if row is None or row[0] != column:
        return None
    return str(row[1])


def save_watermark(engine: Engine, dataset_id: int, column: str, value: str, run_id: str) -> None:
    """Replace the DataSet's high mark in one transaction."""
    with engine.begin() as connection:
        connection.execute(
            delete(ingestion_watermarks).where(ingestion_watermarks.c.DataSetID == dataset_id)
        )
        connection.execute(
            insert(ingestion_watermarks).values(
                DataSetID=dataset_id,
                WatermarkColumn=column,
                WatermarkValue=value,
                UpdatedAt=store_now(),
                RunID=run_id,
            )
        )
