"""Transformations rows resolved into `TransformationModel`s: Configuration, input and output
DataSets, ingestion sources and upstream transformations."""

from __future__ import annotations

from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.identifiers import required_identifier
from data_mesh.catalog.models import (
    FILE_FORMATS,
    INGEST_SOURCE_TYPES,
    DataSetModel,
    TransformationModel,
)
from data_mesh.catalog.sql_policy import check_configured_query
from data_mesh.catalog.transformation_configs import (
    AggregateConfig,
    FilterConfig,
    IngestConfig,
    JoinConfig,
    OutputShaping,
    PropertiesSequenceConfig,
    SelectConfig,
    SqlConfig,
    parse_transformation_config,
)
from data_mesh.store.rows import TransformationRow


def resolve_transformation(
    row: TransformationRow,
    product_name: str,
    by_role: dict[str, list[int]],
    datasets: dict[int, DataSetModel],
    producer_of: dict[int, int],
    explicit_deps: list[int],
    transformation_rows: dict[int, TransformationRow],
) -> TransformationModel:
    where = f"Transformations row {row.TransformationID} ({row.Name})"
    required_identifier(row.Name, where, "Name")
    config = parse_transformation_config(
        row.TransformationID, row.Type, row.Configuration, row.Name
    )
    unknown_roles = set(by_role) - {"input", "output"}
    if unknown_roles:
        raise MetadataError(
            f"{where}: TransformationDataSets Role must be 'input' or 'output', got "
            f"{', '.join(sorted(unknown_roles))}"
        )
    outputs = by_role.get("output", [])
    if len(outputs) != 1:
        raise MetadataError(
            f"{where}: needs exactly one TransformationDataSets row with Role 'output', "
            f"found {len(outputs)}"
        )
    for dataset_id in [*outputs, *by_role.get("input", [])]:
        if dataset_id not in datasets:
            raise MetadataError(f"{where}: DataSets row {dataset_id} is missing or invalid")
    output = datasets[outputs[0]]
    if output.layer != "DDZ":
        raise MetadataError(f"{where}: output DataSets row {output.id} must be in layer DDZ")
    inputs = tuple(datasets[i] for i in by_role.get("input", []))
    for dataset in inputs:
        if dataset.is_kafka:
            raise MetadataError(
                f"{where}: input {dataset.name!r} is a Kafka topic, which data_mesh writes and "
                "never reads: take the DataSet it is published from as the input"
            )
    input_names = {d.name for d in inputs}
    for name in _referenced_inputs(config):
        if name not in input_names:
            raise MetadataError(
                f"{where}: Configuration names input DataSet {name!r}, which is not one of its "
                f"inputs ({', '.join(sorted(input_names)) or 'none'})"
            )
    if isinstance(config, IngestConfig):
        _check_ingestion(where, config, inputs, output)
    if isinstance(config, SqlConfig):
        what = "an input of the transformation"
        check_configured_query(where, "query", config.query, [d.sql_name for d in inputs], what)
    if isinstance(config, PropertiesSequenceConfig) and config.table not in (
        None,
        output.target_table,
        output.target,
    ):
        raise MetadataError(
            f"{where}: Configuration.table {config.table!r} does not match the output DataSet's "
            f"target table {output.target!r}"
        )
    depends: list[str] = []
    for upstream_id in [*explicit_deps, *(producer_of.get(d.id) for d in inputs)]:
        if upstream_id is None:
            continue
        upstream = transformation_rows.get(upstream_id)
        if upstream is None:
            raise MetadataError(
                f"{where}: TransformationDependencies names missing TransformationID {upstream_id}"
            )
        if upstream.Name not in depends:
            depends.append(upstream.Name)
    return TransformationModel(
        id=row.TransformationID,
        name=row.Name,
        description=row.Description,
        type=row.Type,
        config=config,
        product=product_name,
        inputs=inputs,
        output=output,
        depends_on=tuple(depends),
    )


def _referenced_inputs(config: OutputShaping) -> list[str]:
    """DataSet names a configuration refers to; each must be an input of the transformation."""
    match config:
        case JoinConfig():
            return [config.input_dataset, config.second_dataset]
        case FilterConfig() | SelectConfig() | AggregateConfig() | IngestConfig():
            return [config.input_dataset]
        case _:
            return []


def _check_ingestion(
    where: str, config: IngestConfig, inputs: tuple[DataSetModel, ...], output: DataSetModel
) -> None:
    if len(inputs) != 1 or inputs[0].layer != "CDZ":
        raise MetadataError(f"{where}: an ingest transformation reads exactly one source DataSet")
    source = inputs[0]
    kind = source.source_type.lower()
    if kind not in INGEST_SOURCE_TYPES:
        raise MetadataError(
            f"{where}: DataSet {source.name!r} comes from a DataSource of Type "
            f"{source.source_type!r}; ingest reads Type {' or '.join(INGEST_SOURCE_TYPES)}"
        )
    if kind == "file":
        if source.source_format.lower() not in FILE_FORMATS:
            raise MetadataError(
                f"{where}: Format {source.source_format!r} of DataSet {source.name!r} is not "
                f"one of {', '.join(FILE_FORMATS)}"
            )
        if not source.columns or any(c.type is None for c in source.columns):
            raise MetadataError(
                f"{where}: DataSet {source.name!r} needs a Schema with a type for every column "
                "(rows are checked against it)"
            )
        if config.watermark_column or config.partition_column:
            raise MetadataError(f"{where}: watermark and partition columns are for databases")
    if config.watermark_column and output.write_mode == "replace":
        raise MetadataError(
            f"{where}: an incremental load (watermark_column) adds rows: give output DataSet "
            f"{output.name!r} WriteMode append or merge, not replace"
        )
