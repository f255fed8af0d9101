"""Schema contract of the exports: what changed between two versions of a dataset's columns.

A BI report breaks when a column it uses disappears (removed or renamed) or changes type;
a new column breaks nothing. Used by the schema snapshot tests and recorded in every
manifest (changes against the previously published version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from orchestration.export.datasets import SUPPRESSED_COLUMN, DatasetSpec
from orchestration.export.docs import ModelDoc
from orchestration.export.typemap import export_column


@dataclass(frozen=True)
class SchemaChanges:
    breaking: list[str] = field(default_factory=list)
    additive: list[str] = field(default_factory=list)
    reordered: bool = False

    @property
    def any(self) -> bool:
        return bool(self.breaking or self.additive or self.reordered)


def schema_changes(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> SchemaChanges:
    """Compare two column lists (``{"name", "type"}`` items, in file order)."""
    old_types = {c["name"]: c["type"] for c in old}
    new_types = {c["name"]: c["type"] for c in new}
    breaking = [f"column {name!r} removed or renamed" for name in old_types if name not in new_types]
    breaking += [
        f"column {name!r} changed type {old_types[name]} -> {new_types[name]}"
        for name in old_types
        if name in new_types and new_types[name] != old_types[name]
    ]
    additive = [f"column {name!r} added ({new_types[name]})" for name in new_types if name not in old_types]
    common_old = [c["name"] for c in old if c["name"] in new_types]
    common_new = [c["name"] for c in new if c["name"] in old_types]
    return SchemaChanges(breaking=breaking, additive=additive, reordered=common_old != common_new)


def manifest_schema_changes(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per dataset, what changed since the previous manifest (datasets without change are left out)."""
    if not previous:
        return {}
    result: dict[str, dict[str, Any]] = {}
    old_sets = previous.get("datasets", {})
    for name, dataset in current["datasets"].items():
        if name not in old_sets:
            result[name] = {"breaking": [], "additive": ["dataset added"], "reordered": False}
            continue
        changes = schema_changes(old_sets[name]["columns"], dataset["columns"])
        if changes.any:
            result[name] = {"breaking": changes.breaking, "additive": changes.additive, "reordered": changes.reordered}
    for name in old_sets:
        if name not in current["datasets"]:
            result[name] = {"breaking": ["dataset removed"], "additive": [], "reordered": False}
    return result


def contract_columns(spec: DatasetSpec, doc: ModelDoc) -> list[dict[str, str]]:
    """The columns a dataset will have, from its model's dbt contract (declared data types),
    without building the warehouse. Raises when a column declares no data type."""
    columns = []
    for name in doc.columns:
        data_type = doc.data_types.get(name)
        if not data_type:
            raise ValueError(f"{spec.model}.{name} declares no data_type: the export schema is unknown")
        dtype = duckdb.sqltype(data_type)
        columns.append({"name": name, "type": export_column(name, dtype.id, str(dtype)).duckdb_type})
    if spec.suppression:
        columns.append({"name": SUPPRESSED_COLUMN, "type": "BOOLEAN"})
    return columns


SNAPSHOT_UPDATE_HINT = "GVW_UPDATE_SCHEMA_SNAPSHOTS=1 pytest tests/test_export_schema.py"


def snapshot_problems(current: Mapping[str, Sequence[Mapping[str, Any]]], snapshot_dir: Path) -> list[str]:
    """One message per dataset whose columns differ from its committed snapshot."""
    problems = []
    for name, columns in current.items():
        path = snapshot_dir / f"{name}.json"
        if not path.exists():
            problems.append(f"exports/{name}: no schema snapshot at {path.name}; create it with {SNAPSHOT_UPDATE_HINT}")
            continue
        snapshot = json.loads(path.read_text(encoding="utf-8"))["columns"]
        changes = schema_changes(snapshot, columns)
        if changes.breaking:
            problems.append(
                f"exports/{name}: BREAKING change for BI readers against {path.name}: "
                f"{'; '.join(changes.breaking + changes.additive)}. Reports and queries that use these columns "
                f"will break. If intended, announce it to the BI users, then refresh the snapshots: {SNAPSHOT_UPDATE_HINT}"
            )
        elif changes.any:
            detail = "; ".join(changes.additive + (["columns reordered"] if changes.reordered else []))
            problems.append(
                f"exports/{name}: schema differs from {path.name} (not breaking): {detail}. "
                f"Refresh the snapshot: {SNAPSHOT_UPDATE_HINT}"
            )
    for path in sorted(snapshot_dir.glob("*.json")):
        if path.stem not in current:
            problems.append(f"exports/{path.stem}: BREAKING change for BI readers: the dataset is no longer published")
    return problems


def write_snapshots(current: Mapping[str, Sequence[Mapping[str, Any]]], snapshot_dir: Path) -> None:
    """One JSON file per dataset, one column per line (reviewable diffs)."""
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    for name, columns in current.items():
        lines = ",\n".join(f"    {json.dumps({'name': c['name'], 'type': c['type']})}" for c in columns)
        body = f'{{\n  "dataset": {json.dumps(name)},\n  "columns": [\n{lines}\n  ]\n}}\n'
        (snapshot_dir / f"{name}.json").write_text(body, encoding="utf-8")
