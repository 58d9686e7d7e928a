-- Metadata store of data_mesh for Azure SQL (T-SQL).
-- GENERATED from data_mesh/store/schema.py by `data-mesh ddl`: do not edit by hand.
-- Deployed stores are created and upgraded with `data-mesh init --url ...` (Alembic).

CREATE TABLE [AuditLog] (
	[RecordID] INTEGER NOT NULL IDENTITY, 
	[AssetKey] NVARCHAR(255) NOT NULL, 
	[SourceTable] NVARCHAR(255) NOT NULL, 
	[LoadTimestamp] DATETIME2 NOT NULL, 
	[ProcessedBy] NVARCHAR(255) NOT NULL, 
	[ProcessingTime] FLOAT NOT NULL, 
	[Status] NVARCHAR(16) NOT NULL, 
	[RowCount] BIGINT NULL, 
	[ErrorDetails] NVARCHAR(max) NULL, 
	[JobRunID] NVARCHAR(64) NOT NULL, 
	PRIMARY KEY ([RecordID])
);

CREATE INDEX [IX_AuditLog_LoadTimestamp] ON [AuditLog] ([LoadTimestamp]);

CREATE TABLE [ConfigurationCategory] (
	[CategoryID] INTEGER NOT NULL IDENTITY, 
	[CategoryName] NVARCHAR(255) NOT NULL, 
	PRIMARY KEY ([CategoryID]), 
	UNIQUE ([CategoryName])
);

CREATE TABLE [DataProducts] (
	[DataProductID] INTEGER NOT NULL IDENTITY, 
	[Name] NVARCHAR(255) NOT NULL, 
	[Domain] NVARCHAR(255) NOT NULL, 
	[Owner] NVARCHAR(255) NULL, 
	[Description] NVARCHAR(max) NULL, 
	PRIMARY KEY ([DataProductID]), 
	UNIQUE ([Name])
);

CREATE TABLE [DataQualityResults] (
	[ResultID] INTEGER NOT NULL IDENTITY, 
	[RuleID] INTEGER NOT NULL, 
	[RuleName] NVARCHAR(255) NOT NULL, 
	[DataSetID] INTEGER NOT NULL, 
	[DataSetName] NVARCHAR(255) NOT NULL, 
	[RunID] NVARCHAR(64) NOT NULL, 
	[EvaluatedAt] DATETIME2 NOT NULL, 
	[Passed] BIT NOT NULL, 
	[Severity] NVARCHAR(8) NOT NULL, 
	[TotalRows] BIGINT NOT NULL, 
	[FailingRows] BIGINT NULL, 
	[FailingPercent] FLOAT NULL, 
	[Threshold] NVARCHAR(64) NOT NULL, 
	[Observed] NVARCHAR(max) NOT NULL, 
	PRIMARY KEY ([ResultID]), 
	CONSTRAINT [UQ_DataQualityResults_Rule_Run] UNIQUE ([RuleID], [RunID])
);

CREATE INDEX [IX_DataQualityResults_Rule_Time] ON [DataQualityResults] ([RuleID], [EvaluatedAt]);

CREATE TABLE [DataSetMetrics] (
	[MetricID] INTEGER NOT NULL IDENTITY, 
	[DataSetID] INTEGER NOT NULL, 
	[DataSetName] NVARCHAR(255) NOT NULL, 
	[Metric] NVARCHAR(255) NOT NULL, 
	[RunID] NVARCHAR(64) NOT NULL, 
	[PartitionKey] NVARCHAR(64) NULL, 
	[MeasuredAt] DATETIME2 NOT NULL, 
	[Value] FLOAT NULL, 
	PRIMARY KEY ([MetricID]), 
	CONSTRAINT [UQ_DataSetMetrics_Metric_Run] UNIQUE ([DataSetID], [Metric], [RunID])
);

CREATE INDEX [IX_DataSetMetrics_Metric_Time] ON [DataSetMetrics] ([DataSetID], [Metric], [MeasuredAt]);

CREATE TABLE [DataSources] (
	[DataSourceID] INTEGER NOT NULL IDENTITY, 
	[Name] NVARCHAR(255) NOT NULL, 
	[Type] NVARCHAR(255) NOT NULL, 
	[ConnectionString] NVARCHAR(max) NOT NULL, 
	[Format] NVARCHAR(255) NOT NULL, 
	PRIMARY KEY ([DataSourceID]), 
	UNIQUE ([Name])
);

CREATE TABLE [IngestionWatermarks] (
	[DataSetID] INTEGER NOT NULL, 
	[WatermarkColumn] NVARCHAR(128) NOT NULL, 
	[WatermarkValue] NVARCHAR(64) NOT NULL, 
	[UpdatedAt] DATETIME2 NOT NULL, 
	[RunID] NVARCHAR(64) NOT NULL, 
	PRIMARY KEY ([DataSetID])
);

CREATE TABLE [ConfigurationItem] (
	[ItemID] INTEGER NOT NULL IDENTITY, 
	[CategoryID] INTEGER NOT NULL, 
	[ItemKey] NVARCHAR(255) NOT NULL, 
	[ItemValue] NVARCHAR(max) NOT NULL, 
	[Description] NVARCHAR(1000) NULL, 
	PRIMARY KEY ([ItemID]), 
	CONSTRAINT [UQ_ConfigurationItem_Category_Key] UNIQUE ([CategoryID], [ItemKey]), 
	FOREIGN KEY([CategoryID]) REFERENCES [ConfigurationCategory] ([CategoryID])
);

CREATE TABLE [DataSets] (
	[DataSetID] INTEGER NOT NULL IDENTITY, 
	[DataSourceID] INTEGER NOT NULL, 
	[Name] NVARCHAR(255) NOT NULL, 
	[Schema] NVARCHAR(max) NOT NULL, 
	[DataProductID] INTEGER NOT NULL, 
	[Layer] NVARCHAR(8) NOT NULL, 
	[Location] NVARCHAR(1024) NULL, 
	[TargetSchema] NVARCHAR(128) NULL, 
	[TargetTable] NVARCHAR(128) NULL, 
	[WriteMode] NVARCHAR(16) NULL, 
	[KeyColumns] NVARCHAR(1024) NULL, 
	[Description] NVARCHAR(max) NULL, 
	[PartitionColumn] NVARCHAR(128) NULL, 
	[PartitionStart] DATETIME NULL, 
	[RetentionDays] INTEGER NULL, 
	[TopicPartitions] INTEGER NULL, 
	PRIMARY KEY ([DataSetID]), 
	CONSTRAINT [UQ_DataSets_Source_Name] UNIQUE ([DataSourceID], [Name]), 
	FOREIGN KEY([DataSourceID]) REFERENCES [DataSources] ([DataSourceID]), 
	FOREIGN KEY([DataProductID]) REFERENCES [DataProducts] ([DataProductID])
);

CREATE TABLE [Transformations] (
	[TransformationID] INTEGER NOT NULL IDENTITY, 
	[Name] NVARCHAR(255) NOT NULL, 
	[Description] NVARCHAR(max) NULL, 
	[Type] NVARCHAR(255) NOT NULL, 
	[Configuration] NVARCHAR(max) NOT NULL, 
	[DataProductID] INTEGER NOT NULL, 
	PRIMARY KEY ([TransformationID]), 
	UNIQUE ([Name]), 
	FOREIGN KEY([DataProductID]) REFERENCES [DataProducts] ([DataProductID])
);

CREATE TABLE [ConfigurationVersion] (
	[VersionID] INTEGER NOT NULL IDENTITY, 
	[ItemID] INTEGER NOT NULL, 
	[VersionNumber] INTEGER NOT NULL, 
	[ItemValue] NVARCHAR(max) NOT NULL, 
	[EffectiveDate] DATETIME2 NOT NULL, 
	[ExpirationDate] DATETIME2 NULL, 
	PRIMARY KEY ([VersionID]), 
	CONSTRAINT [UQ_ConfigurationVersion_Item_Number] UNIQUE ([ItemID], [VersionNumber]), 
	FOREIGN KEY([ItemID]) REFERENCES [ConfigurationItem] ([ItemID])
);

CREATE TABLE [DataQualityRules] (
	[RuleID] INTEGER NOT NULL IDENTITY, 
	[DataSetID] INTEGER NOT NULL, 
	[Name] NVARCHAR(255) NOT NULL, 
	[Description] NVARCHAR(max) NULL, 
	[Type] NVARCHAR(255) NOT NULL, 
	[Configuration] NVARCHAR(max) NOT NULL, 
	PRIMARY KEY ([RuleID]), 
	CONSTRAINT [UQ_DataQualityRules_DataSet_Name] UNIQUE ([DataSetID], [Name]), 
	FOREIGN KEY([DataSetID]) REFERENCES [DataSets] ([DataSetID])
);

CREATE TABLE [TransformationDataSets] (
	[TransformationDataSetID] INTEGER NOT NULL IDENTITY, 
	[TransformationID] INTEGER NOT NULL, 
	[DataSetID] INTEGER NOT NULL, 
	[Role] NVARCHAR(16) NOT NULL, 
	PRIMARY KEY ([TransformationDataSetID]), 
	CONSTRAINT [UQ_TransformationDataSets] UNIQUE ([TransformationID], [DataSetID], [Role]), 
	FOREIGN KEY([TransformationID]) REFERENCES [Transformations] ([TransformationID]), 
	FOREIGN KEY([DataSetID]) REFERENCES [DataSets] ([DataSetID])
);

CREATE TABLE [TransformationDependencies] (
	[DependencyID] INTEGER NOT NULL IDENTITY, 
	[TransformationID] INTEGER NOT NULL, 
	[DependsOnTransformationID] INTEGER NOT NULL, 
	PRIMARY KEY ([DependencyID]), 
	CONSTRAINT [UQ_TransformationDependencies] UNIQUE ([TransformationID], [DependsOnTransformationID]), 
	FOREIGN KEY([TransformationID]) REFERENCES [Transformations] ([TransformationID]), 
	FOREIGN KEY([DependsOnTransformationID]) REFERENCES [Transformations] ([TransformationID])
);
