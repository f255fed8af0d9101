"""BI exports as Dagster assets (group ``exports``): one multi-asset publishes one consistent
version of every dataset (``["exports", <dataset>]``) after its mart.

The assets depend on the mart assets; the quality checks attached to the marts are
blocking, so a failing check makes Dagster skip the export and the previous version stays
published. The work itself lives in :mod:`orchestration.export`.
"""

# No `from __future__ import annotations`: Dagster inspects the real type of `context`.
import functools
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from orchestration.export import DATASETS, DbtDocs, ExportOptions, publish_exports
from orchestration.export.datasets import DatasetSpec
from orchestration.resources import PIPELINE_OWNERS, WAREHOUSE_POOL, WarehouseResource

EXPORTS_GROUP = "exports"

__all__ = ["EXPORTS_GROUP", "build_export_assets", "export_assets"]


def _spec(dataset: DatasetSpec, mart_key: dg.AssetKey, docs: DbtDocs) -> dg.AssetSpec:
    doc = docs.model(dataset.model)
    description = f"Parquet export of {dataset.model}. {doc.description}".strip()
    return dg.AssetSpec(
        key=dg.AssetKey([EXPORTS_GROUP, dataset.name]),
        deps=[mart_key],
        group_name=EXPORTS_GROUP,
        owners=PIPELINE_OWNERS,
        description=description,
        kinds={"parquet"},
        metadata={"source_model": dataset.model, "grain": doc.grain or dataset.grain},
    )


def _metadata(name: str, dataset: Mapping[str, Any], manifest: Mapping[str, Any], exports_dir) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/row_count": dataset["rows"],
        "bytes": dataset["bytes"],
        "files": len(dataset["files"]),
        "path": str(exports_dir / name),
        "version": manifest["version_id"],
        "version_path": str(exports_dir / manifest["version_path"] / name),
        "manifest": dg.MetadataValue.path(str(exports_dir / "manifest.json")),
        "partitioned_by": (dataset["partitioning"] or {}).get("source_column") or "none",
        "dagster/column_schema": dg.TableSchema(columns=[
            dg.TableColumn(name=c["name"], type=c["type"], description=c["description"] or None)
            for c in dataset["columns"]
        ]),
    }
    if dataset.get("suppression"):
        metadata["rows_suppressed"] = dataset["suppression"]["rows_suppressed"]
    changes = manifest.get("schema_changes", {}).get("datasets", {}).get(name)
    if changes:
        metadata["schema_changes"] = dg.MetadataValue.json(changes)
    return metadata


def build_export_assets(
    mart_keys: Mapping[str, dg.AssetKey], docs: DbtDocs, partition_min_rows: int | None = None
) -> list[dg.AssetsDefinition]:
    """The export multi-asset, depending on ``mart_keys`` (dbt model name -> asset key)."""
    missing = [d.model for d in DATASETS if d.model not in mart_keys]
    if missing:
        raise ValueError(f"no asset key for mart(s) {', '.join(missing)}")
    overrides = {} if partition_min_rows is None else {"partition_min_rows": partition_min_rows}

    @dg.multi_asset(
        name="export_datasets",
        pool=WAREHOUSE_POOL,
        specs=[_spec(d, mart_keys[d.model], docs) for d in DATASETS],
        # one version holds every dataset: they are never published one by one
        can_subset=False,
        description="Publish every mart as Parquet under exports/: staged, checked, then switched in atomically.",
    )
    def export_datasets(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult]:
        options = ExportOptions.from_settings(warehouse.settings(), **overrides)
        with warehouse.connect(read_only=True) as conn:
            result = publish_exports(conn, options, docs, run_id=context.run.run_id)
        manifest = result.manifest
        if result.unchanged:
            context.log.info(f"the marts hold what {result.version_id} holds: kept it, wrote nothing")
        else:
            for name, changes in manifest["schema_changes"]["datasets"].items():
                if changes["breaking"]:
                    context.log.warning(f"exports/{name}: breaking change for BI readers: {'; '.join(changes['breaking'])}")
            context.log.info(
                f"published {result.version_id} to {result.exports_dir}"
                + (f"; pruned {', '.join(result.pruned)}" if result.pruned else "")
            )
        for name, dataset in manifest["datasets"].items():
            metadata = _metadata(name, dataset, manifest, result.exports_dir)
            metadata["unchanged"] = result.unchanged
            if result.unchanged:
                metadata.pop("schema_changes", None)  # those were the previous publish's
            yield dg.MaterializeResult(asset_key=dg.AssetKey([EXPORTS_GROUP, name]), metadata=metadata)

    return [export_datasets]


@functools.cache
def _export_assets_of_the_dbt_project() -> list[dg.AssetsDefinition]:
    from dagster_dbt import get_asset_key_for_model
    from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets

    from orchestration.assets.warehouse import dbt_warehouse_assets

    manifest, _translator, _project = get_manifest_and_translator_from_dbt_assets([dbt_warehouse_assets])
    keys = {d.model: get_asset_key_for_model([dbt_warehouse_assets], d.model) for d in DATASETS}
    return build_export_assets(keys, DbtDocs.from_manifest(manifest))


def __getattr__(name: str) -> Any:
    # ``export_assets`` is built on first use, so that importing this module (e.g. for
    # ``build_export_assets``) does not need the dbt manifest.
    if name == "export_assets":
        return _export_assets_of_the_dbt_project()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
