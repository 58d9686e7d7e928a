"""DataQualityRules rows resolved into `QualityRuleModel`s and attached to the transformation
that computes their DataSet."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.identifiers import required_identifier
from data_mesh.catalog.models import DataSetModel, QualityRuleModel, TransformationModel
from data_mesh.catalog.rule_configs import (
    CustomSqlRule,
    ReferentialIntegrityRule,
    parse_rule_config,
    rule_columns,
)
from data_mesh.catalog.sql_policy import check_configured_query
from data_mesh.store.rows import DataQualityRuleRow, TransformationRow


def resolve_rule(
    row: DataQualityRuleRow,
    dataset: DataSetModel,
    all_datasets: Iterable[DataSetModel],
    producer_of: dict[int, int],
) -> QualityRuleModel:
    where = f"DataQualityRules row {row.RuleID} ({row.Name})"
    # The name becomes the Dagster check name: letters, digits and '_' only.
    required_identifier(row.Name, where, "Name")
    config = parse_rule_config(row.RuleID, row.Name, row.Type, row.Configuration)
    if dataset.layer != "DDZ" or dataset.id not in producer_of:
        raise MetadataError(
            f"{where}: DataSet {dataset.name!r} is not produced by a transformation; rules "
            "are checked where their DataSet is computed, so put them on a DDZ DataSet"
        )
    _check_declared_columns(where, dataset, rule_columns(config))
    if isinstance(config, CustomSqlRule):
        # The query runs over the checked rows, registered under the DataSet's name alone.
        check_configured_query(where, "query", config.query, [dataset.name], "the checked DataSet")
    reference = None
    if isinstance(config, ReferentialIntegrityRule):
        matches = [
            d
            for d in all_datasets
            if config.reference_dataset in (d.name, d.sql_name, f"{d.source_name}.{d.name}")
        ]
        if len(matches) != 1:
            found = "no DataSet" if not matches else f"{len(matches)} DataSets"
            raise MetadataError(
                f"{where}: reference_dataset {config.reference_dataset!r} matches {found}"
                + (" (write it as '<source>.<dataset>')" if matches else "")
            )
        reference = matches[0]
        if reference.is_kafka:
            raise MetadataError(
                f"{where}: reference DataSet {reference.name!r} is a Kafka topic, which is "
                "never read"
            )
        if reference.layer == "DDZ" and reference.id not in producer_of:
            raise MetadataError(
                f"{where}: reference DataSet {reference.name!r} is not produced by any "
                "transformation"
            )
        _check_declared_columns(where, reference, [config.reference_column])
    return QualityRuleModel(
        id=row.RuleID,
        name=row.Name,
        description=row.Description,
        type=row.Type,
        config=config,
        dataset=dataset,
        reference=reference,
    )


def _check_declared_columns(where: str, dataset: DataSetModel, columns: list[str]) -> None:
    """Columns a rule names must exist when the DataSet's Schema lists its columns."""
    declared = {c.name.lower() for c in dataset.columns}
    if not declared:
        return  # checked against the computed DataFrame at run time
    missing = [c for c in columns if c.lower() not in declared]
    if missing:
        raise MetadataError(
            f"{where}: column {', '.join(map(repr, missing))} is not in DataSet "
            f"{dataset.name!r} (columns: {', '.join(c.name for c in dataset.columns)})"
        )


def with_rules(
    transformation: TransformationModel,
    rules: list[QualityRuleModel],
    producer_of: dict[int, int],
    rows: dict[int, TransformationRow],
) -> TransformationModel:
    """Attach rules; a referential_integrity rule on a DDZ reference runs after its producer."""
    depends = list(transformation.depends_on)
    for rule in rules:
        if rule.reference is None or rule.reference.id not in producer_of:
            continue
        upstream = rows[producer_of[rule.reference.id]].Name
        if upstream not in depends and upstream != transformation.name:
            depends.append(upstream)
    return dataclasses.replace(
        transformation,
        rules=tuple(sorted(rules, key=lambda r: r.id)),
        depends_on=tuple(depends),
    )
