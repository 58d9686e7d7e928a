"""Reading a DDZ table back into Spark for downstream assets: a partitioned JDBC read."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from data_mesh.ddz.connection import DdzConnection
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.sessions import open_session, transaction

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


def read_ddz_table(
    spark: SparkSession,
    connection: DdzConnection,
    table: TableName,
    partition_column: str | None = None,
    num_partitions: int = 4,
    fetch_size: int = 10_000,
) -> DataFrame:
    """A lazy DataFrame over a DDZ table, read by `num_partitions` parallel range queries on an
    integer `partition_column` (a key column), with `fetch_size` rows per round trip so the
    reader never holds a whole partition in memory."""
    dialect = connection.dialect
    properties = {
        **connection.jdbc_properties,
        "driver": dialect.driver_class,
        "fetchsize": str(fetch_size),
    }
    url, qualified = connection.jdbc_url, dialect.qualified(table)
    frame = spark.read.jdbc(url, qualified, properties=properties)
    if partition_column is None or num_partitions <= 1:
        return frame
    field = next((f for f in frame.schema.fields if f.name == partition_column), None)
    if field is None or not isinstance(field.dataType, _INTEGRAL):
        return frame  # a non-integer key cannot be split into ranges: read in one query
    session = open_session(spark, connection)
    try:
        with transaction(session):
            low, high = session.query(dialect.key_bounds(table, partition_column))[0]
    finally:
        session.close()
    if low is None or high is None:
        return frame
    return spark.read.jdbc(
        url,
        qualified,
        column=dialect.quote(partition_column),
        lowerBound=int(str(low)),
        upperBound=int(str(high)) + 1,
        numPartitions=num_partitions,
        properties=properties,
    )
