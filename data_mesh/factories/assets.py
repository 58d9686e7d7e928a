"""Assets from DataSets and Transformations rows.

No `from __future__ import annotations` here: Dagster inspects the compute function's real
annotations (the `context` type).
"""

import json
from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MetadataValue,
    asset,
)
from pyspark.sql import DataFrame

from data_mesh.metadata.catalog import DataProductModel, DataSetModel, TransformationModel
from data_mesh.metadata.configs import PropertiesSequenceConfig
from data_mesh.resources.ddz_io_manager import (
    KEY_COLUMNS,
    SPARK_CONFIG,
    TARGET_TABLE,
    WRITE_MODE,
)
from data_mesh.resources.environments import DDZ_IO_MANAGER_KEY
from data_mesh.spark_conf import spark_config_scope
from data_mesh.transforms.execute import (
    register_cdz_dataset,
    run_transformation,
)
from data_mesh.transforms.query_files import query_file_path, sequence_file_path


def dataset_asset_key(dataset: DataSetModel) -> AssetKey:
    """`<domain>/<layer>/<dataset>`, e.g. `payments/ddz/sor1_payments`."""
    return AssetKey([dataset.domain, dataset.layer.lower(), dataset.name])


def _owners(product: DataProductModel) -> list[str]:
    return [product.owner] if product.owner else []


def _input_name(dataset: DataSetModel) -> str:
    return f"in_{dataset.name}"


def source_asset_spec(dataset: DataSetModel, product: DataProductModel) -> AssetSpec:
    """A CDZ DataSet: an external asset, observed in the lake, not materialized by Dagster."""
    return AssetSpec(
        key=dataset_asset_key(dataset),
        description=dataset.description or f"CDZ data {dataset.sql_name}",
        group_name=dataset.domain,
        owners=_owners(product),
        kinds={"azure", "parquet" if dataset.source_format == "parquet" else "file"},
        tags={"data_mesh/layer": "cdz", "data_mesh/product": product.name},
        metadata={
            "data_mesh/dataset_id": dataset.id,
            "data_mesh/sql_name": dataset.sql_name,
            "data_mesh/location": dataset.location or "",
            "data_mesh/format": dataset.source_format,
        },
    )


def transformation_metadata(transformation: TransformationModel) -> dict[str, Any]:
    output = transformation.output
    metadata: dict[str, Any] = {
        "data_mesh/transformation_id": transformation.id,
        "data_mesh/dataset_id": output.id,
        "data_mesh/transformation_type": transformation.type,
        TARGET_TABLE: output.target or "",
        WRITE_MODE: output.write_mode or "replace",
        KEY_COLUMNS: ",".join(output.key_columns),
        SPARK_CONFIG: json.dumps(dict(transformation.config.spark_config), sort_keys=True),
    }
    if isinstance(transformation.config, PropertiesSequenceConfig):
        metadata["data_mesh/query_file"] = query_file_path(transformation.config)
        metadata["data_mesh/sequence_file"] = sequence_file_path(transformation.config)
    if output.target:
        metadata["dagster/table_name"] = output.target
    return metadata


def transformation_asset(
    transformation: TransformationModel,
    product: DataProductModel,
    upstream_outputs: Mapping[str, DataSetModel],
) -> AssetsDefinition:
    """A Transformations row: an asset for its output DataSet, computed by Spark.

    `upstream_outputs` maps transformation names to their output DataSets, so explicit
    TransformationDependencies rows become lineage edges too.
    """
    output = transformation.output
    cdz_inputs = [d for d in transformation.inputs if d.layer == "CDZ"]
    ddz_inputs = [d for d in transformation.inputs if d.layer == "DDZ"]
    order_only = [
        dataset_asset_key(upstream_outputs[name])
        for name in transformation.depends_on
        if upstream_outputs[name] not in transformation.inputs
    ]

    @asset(
        key=dataset_asset_key(output),
        ins={_input_name(d): AssetIn(key=dataset_asset_key(d)) for d in ddz_inputs},
        deps=[*(dataset_asset_key(d) for d in cdz_inputs), *order_only],
        description=transformation.description or output.description,
        group_name=output.domain,
        owners=_owners(product),
        kinds={"spark", "azure-sql"},
        tags={
            "data_mesh/layer": "ddz",
            "data_mesh/product": product.name,
            "data_mesh/transformation_type": transformation.type,
        },
        metadata=transformation_metadata(transformation),
        io_manager_key=DDZ_IO_MANAGER_KEY,
        required_resource_keys={"spark", "lake"},
    )
    def _compute(context: AssetExecutionContext, **upstream: DataFrame) -> DataFrame:
        spark = context.resources.spark.spark_session
        storage = context.resources.lake.storage()
        inputs = {d.name: upstream[_input_name(d)] for d in ddz_inputs}
        for dataset in cdz_inputs:
            uri = storage.spark_uri(dataset.location or "")
            inputs[dataset.name] = register_cdz_dataset(spark, dataset, uri)
        with spark_config_scope(spark, transformation.config.spark_config):
            result = run_transformation(spark, transformation, inputs, storage)
        context.add_output_metadata({"columns": MetadataValue.text(", ".join(result.columns))})
        return result

    return _compute
