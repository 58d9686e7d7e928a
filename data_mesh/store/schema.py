"""The metadata-store schema, defined once.

Tables and column names follow seed 004 (DataSources, DataSets, Transformations, ...). Columns
added for the factories are documented in `metadata/README.md`. The T-SQL DDL in
`metadata/ddl/metadata_store.sql` is generated from this module (`data-mesh ddl`), and Alembic
migrations under `data_mesh/store/migrations/` evolve deployed stores.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.dialects import mssql

metadata_obj = MetaData()

NAME = Unicode(255)
# Unicode() without a length is NVARCHAR(MAX) on SQL Server (not the deprecated NTEXT).
TEXT = Unicode()
TIMESTAMP = DateTime().with_variant(mssql.DATETIME2(), "mssql")

data_products = Table(
    "DataProducts",
    metadata_obj,
    Column("DataProductID", Integer, primary_key=True, autoincrement=True),
    Column("Name", NAME, nullable=False, unique=True),
    Column("Domain", NAME, nullable=False),
    Column("Owner", NAME, nullable=True),
    Column("Description", TEXT, nullable=True),
)

data_sources = Table(
    "DataSources",
    metadata_obj,
    Column("DataSourceID", Integer, primary_key=True, autoincrement=True),
    Column("Name", NAME, nullable=False, unique=True),
    Column("Type", NAME, nullable=False),
    Column("ConnectionString", TEXT, nullable=False),
    Column("Format", NAME, nullable=False),
)

data_sets = Table(
    "DataSets",
    metadata_obj,
    Column("DataSetID", Integer, primary_key=True, autoincrement=True),
    Column("DataSourceID", Integer, ForeignKey("DataSources.DataSourceID"), nullable=False),
    Column("Name", NAME, nullable=False),
    Column("Schema", TEXT, nullable=False),
    Column("DataProductID", Integer, ForeignKey("DataProducts.DataProductID"), nullable=False),
    Column("Layer", Unicode(8), nullable=False),
    Column("Location", Unicode(1024), nullable=True),
    Column("TargetSchema", Unicode(128), nullable=True),
    Column("TargetTable", Unicode(128), nullable=True),
    Column("WriteMode", Unicode(16), nullable=True),
    Column("KeyColumns", Unicode(1024), nullable=True),
    Column("Description", TEXT, nullable=True),
    # Daily partitions (seed 002's `load_date`): the column, the first day, days kept.
    Column("PartitionColumn", Unicode(128), nullable=True),
    Column("PartitionStart", Date, nullable=True),
    Column("RetentionDays", Integer, nullable=True),
    # A Kafka DataSet (its DataSource of Type kafka): the topic's partitions; TargetTable is the
    # topic.
    Column("TopicPartitions", Integer, nullable=True),
    UniqueConstraint("DataSourceID", "Name", name="UQ_DataSets_Source_Name"),
)

transformations = Table(
    "Transformations",
    metadata_obj,
    Column("TransformationID", Integer, primary_key=True, autoincrement=True),
    Column("Name", NAME, nullable=False, unique=True),
    Column("Description", TEXT, nullable=True),
    Column("Type", NAME, nullable=False),
    Column("Configuration", TEXT, nullable=False),
    Column("DataProductID", Integer, ForeignKey("DataProducts.DataProductID"), nullable=False),
)

transformation_dependencies = Table(
    "TransformationDependencies",
    metadata_obj,
    Column("DependencyID", Integer, primary_key=True, autoincrement=True),
    Column(
        "TransformationID",
        Integer,
        ForeignKey("Transformations.TransformationID"),
        nullable=False,
    ),
    Column(
        "DependsOnTransformationID",
        Integer,
        ForeignKey("Transformations.TransformationID"),
        nullable=False,
    ),
    UniqueConstraint(
        "TransformationID", "DependsOnTransformationID", name="UQ_TransformationDependencies"
    ),
)

data_quality_rules = Table(
    "DataQualityRules",
    metadata_obj,
    Column("RuleID", Integer, primary_key=True, autoincrement=True),
    Column("DataSetID", Integer, ForeignKey("DataSets.DataSetID"), nullable=False),
    Column("Name", NAME, nullable=False),
    Column("Description", TEXT, nullable=True),
    Column("Type", NAME, nullable=False),
    Column("Configuration", TEXT, nullable=False),
    UniqueConstraint("DataSetID", "Name", name="UQ_DataQualityRules_DataSet_Name"),
)

transformation_data_sets = Table(
    "TransformationDataSets",
    metadata_obj,
    Column("TransformationDataSetID", Integer, primary_key=True, autoincrement=True),
    Column(
        "TransformationID",
        Integer,
        ForeignKey("Transformations.TransformationID"),
        nullable=False,
    ),
    Column("DataSetID", Integer, ForeignKey("DataSets.DataSetID"), nullable=False),
    Column("Role", Unicode(16), nullable=False),
    UniqueConstraint("TransformationID", "DataSetID", "Role", name="UQ_TransformationDataSets"),
)

configuration_category = Table(
    "ConfigurationCategory",
    metadata_obj,
    Column("CategoryID", Integer, primary_key=True, autoincrement=True),
    Column("CategoryName", NAME, nullable=False, unique=True),
)

configuration_item = Table(
    "ConfigurationItem",
    metadata_obj,
    Column("ItemID", Integer, primary_key=True, autoincrement=True),
    Column("CategoryID", Integer, ForeignKey("ConfigurationCategory.CategoryID"), nullable=False),
    Column("ItemKey", NAME, nullable=False),
    Column("ItemValue", TEXT, nullable=False),
    Column("Description", Unicode(1000), nullable=True),
    UniqueConstraint("CategoryID", "ItemKey", name="UQ_ConfigurationItem_Category_Key"),
)

configuration_version = Table(
    "ConfigurationVersion",
    metadata_obj,
    Column("VersionID", Integer, primary_key=True, autoincrement=True),
    Column("ItemID", Integer, ForeignKey("ConfigurationItem.ItemID"), nullable=False),
    Column("VersionNumber", Integer, nullable=False),
    Column("ItemValue", TEXT, nullable=False),
    Column("EffectiveDate", TIMESTAMP, nullable=False),
    Column("ExpirationDate", TIMESTAMP, nullable=True),
    UniqueConstraint("ItemID", "VersionNumber", name="UQ_ConfigurationVersion_Item_Number"),
)

# Results of quality rules, one row per rule per run, for trends. No foreign key to
# DataQualityRules: history outlives a rule that is changed or removed (its name is kept).
data_quality_results = Table(
    "DataQualityResults",
    metadata_obj,
    Column("ResultID", Integer, primary_key=True, autoincrement=True),
    Column("RuleID", Integer, nullable=False),
    Column("RuleName", NAME, nullable=False),
    Column("DataSetID", Integer, nullable=False),
    Column("DataSetName", NAME, nullable=False),
    Column("RunID", Unicode(64), nullable=False),
    Column("EvaluatedAt", TIMESTAMP, nullable=False),
    Column("Passed", Boolean, nullable=False),
    Column("Severity", Unicode(8), nullable=False),
    Column("TotalRows", BigInteger, nullable=False),
    Column("FailingRows", BigInteger, nullable=True),
    Column("FailingPercent", Float, nullable=True),
    Column("Threshold", Unicode(64), nullable=False),
    Column("Observed", TEXT, nullable=False),
    UniqueConstraint("RuleID", "RunID", name="UQ_DataQualityResults_Rule_Run"),
    Index("IX_DataQualityResults_Rule_Time", "RuleID", "EvaluatedAt"),
)

# Metrics of each materialization (row count, a column's null share, sum, mean, distinct count,
# freshness lag), one row per metric per run: the history anomaly rules judge a run against,
# and where `quality.profile_history` keeps profiles. No foreign key, like the results history.
dataset_metrics = Table(
    "DataSetMetrics",
    metadata_obj,
    Column("MetricID", Integer, primary_key=True, autoincrement=True),
    Column("DataSetID", Integer, nullable=False),
    Column("DataSetName", NAME, nullable=False),
    Column("Metric", NAME, nullable=False),
    Column("RunID", Unicode(64), nullable=False),
    Column("PartitionKey", Unicode(64), nullable=True),
    Column("MeasuredAt", TIMESTAMP, nullable=False),
    Column("Value", Float, nullable=True),
    UniqueConstraint("DataSetID", "Metric", "RunID", name="UQ_DataSetMetrics_Metric_Run"),
    Index("IX_DataSetMetrics_Metric_Time", "DataSetID", "Metric", "MeasuredAt"),
)

# The audit log of seed 001 (Record_ID, Source_Table, Load_Timestamp, Processed_By,
# Processing_Time, Status, Row_Count, Error_Details, Job_Run_Id), one row per materialization
# and per failure, written by the framework (factories and the DDZ IO manager).
audit_log = Table(
    "AuditLog",
    metadata_obj,
    Column("RecordID", Integer, primary_key=True, autoincrement=True),
    Column("AssetKey", NAME, nullable=False),
    Column("SourceTable", NAME, nullable=False),
    Column("LoadTimestamp", TIMESTAMP, nullable=False),
    Column("ProcessedBy", NAME, nullable=False),
    Column("ProcessingTime", Float, nullable=False),
    Column("Status", Unicode(16), nullable=False),
    Column("RowCount", BigInteger, nullable=True),
    Column("ErrorDetails", TEXT, nullable=True),
    Column("JobRunID", Unicode(64), nullable=False),
    Index("IX_AuditLog_LoadTimestamp", "LoadTimestamp"),
)

# How far incremental ingestion of a DataSet has read (seed 001): the high mark of its watermark
# column, advanced only after the load that read up to it was written.
ingestion_watermarks = Table(
    "IngestionWatermarks",
    metadata_obj,
    Column("DataSetID", Integer, primary_key=True, autoincrement=False),
    Column("WatermarkColumn", Unicode(128), nullable=False),
    Column("WatermarkValue", Unicode(64), nullable=False),
    Column("UpdatedAt", TIMESTAMP, nullable=False),
    Column("RunID", Unicode(64), nullable=False),
)
