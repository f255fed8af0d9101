"""Descriptions of the marts, read from the dbt manifest (``target/manifest.json``).

The dbt model YAMLs are the one place where models and columns are documented; the
manifest that ``dbt parse`` (or ``dagster-dbt project prepare-and-package``) writes holds
them, so the exports never repeat a column list or a description.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DbtDocsError(RuntimeError):
    """The dbt manifest is missing or unreadable."""


@dataclass(frozen=True)
class ModelDoc:
    name: str
    description: str = ""
    grain: str | None = None
    # lower-cased column name -> description, in the order the YAML declares them
    columns: Mapping[str, str] = field(default_factory=dict)
    # lower-cased column name -> declared data_type (the model contract), when declared
    data_types: Mapping[str, str] = field(default_factory=dict)
    schema: str | None = None
    relation_name: str | None = None

    def column_description(self, column: str) -> str:
        return self.columns.get(column.lower(), "")


@dataclass(frozen=True)
class DbtDocs:
    models: Mapping[str, ModelDoc]
    project_name: str | None = None
    dbt_version: str | None = None
    generated_at: str | None = None

    def model(self, name: str) -> ModelDoc:
        return self.models.get(name) or ModelDoc(name=name)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> DbtDocs:
        metadata = manifest.get("metadata") or {}
        project = metadata.get("project_name")
        models: dict[str, ModelDoc] = {}
        for node in (manifest.get("nodes") or {}).values():
            if node.get("resource_type") != "model":
                continue
            name = node["name"]
            # a model of the root project wins over a same-named one of a package
            if name in models and node.get("package_name") != project:
                continue
            meta = {**(node.get("config") or {}).get("meta", {}), **(node.get("meta") or {})}
            models[name] = ModelDoc(
                name=name,
                description=_clean(node.get("description")),
                grain=_clean(meta.get("grain")) or None,
                columns={
                    str(col.get("name") or key).lower(): _clean(col.get("description"))
                    for key, col in (node.get("columns") or {}).items()
                },
                data_types={
                    str(col.get("name") or key).lower(): str(col["data_type"])
                    for key, col in (node.get("columns") or {}).items()
                    if col.get("data_type")
                },
                schema=node.get("schema"),
                relation_name=node.get("relation_name"),
            )
        return cls(
            models=models,
            project_name=project,
            dbt_version=metadata.get("dbt_version"),
            generated_at=metadata.get("generated_at"),
        )

    @classmethod
    def load(cls, manifest_path: Path) -> DbtDocs:
        try:
            manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DbtDocsError(
                f"dbt manifest not found at {manifest_path}: run `make setup` "
                "(dagster-dbt project prepare-and-package) or `dbt parse` first"
            ) from exc
        except (OSError, ValueError) as exc:
            raise DbtDocsError(f"dbt manifest {manifest_path} is unreadable: {exc}") from exc
        return cls.from_manifest(manifest)


def _clean(text: Any) -> str:
    """One-line text: YAML folded blocks and stray blanks collapse to single spaces."""
    return " ".join(str(text or "").split())
