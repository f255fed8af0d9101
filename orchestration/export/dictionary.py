"""``exports/DATA_DICTIONARY.md``, rendered from a version's manifest (itself built from the dbt docs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_READING = """\
## Reading the exports

Every dataset is a folder `exports/<dataset>/` of Parquet files ({compression} compression,
each file's rows sorted by all its columns in column order, row groups of up to
{row_group_size:,} rows, Parquet format version 1). Read
`exports/<dataset>/**/*.parquet`: every file holds every column of its dataset. A dataset
of {partition_min_rows:,} rows or more is split into hive-style sub-folders
(`<column>_partition=<value>/`); hive-aware readers (pandas, pyarrow, polars on a folder, Spark)
show the folder key as one extra string column, which you can ignore.

Types: integers are 32- or 64-bit signed, shares are double, dates are dates, instants are
`TIMESTAMP WITH TIME ZONE` (UTC, microseconds), strings are UTF-8, flags are booleans.

| tool | how |
| --- | --- |
| Metabase, Superset, DBeaver, Evidence, Tableau (DuckDB driver) | open `exports/bi.duckdb` **read-only**: one view per dataset, plus table `export_info`. The views hold the absolute path of `exports/` (rewritten on every publish): a BI tool in a container must mount the folder at that same path |
| DuckDB | `select * from read_parquet('exports/votes/**/*.parquet', hive_partitioning = false)` |
| pandas | `pd.read_parquet('exports/votes')` |
| polars | `pl.read_parquet('exports/votes/**/*.parquet')` |
| pyarrow | `pyarrow.dataset.dataset('exports/votes', format='parquet').to_table()` |
| Spark | `spark.read.parquet('exports/votes')` |
| Power BI | Get data > Folder `exports/votes` > Combine files (or Parquet, for one file) |

Publishing is atomic: each version is written and checked in a staging folder, then one
rename switches every dataset at once. The {versions_kept} most recent versions stay under
`exports/_versions/<version_id>/`; `manifest.json` lists the current version's files with
their SHA-256.
"""

_PRIVACY = """\
## Privacy

No export holds a direct identifier: no e-mail address, no vote-platform response id, no
workshop participant reference. Votes and participants carry pseudonymous keys (hashes).
Aggregates that count people (`theme_rankings`) suppress small cells: outside the global
scope, a count below {min_cell} is published as null, together with the values derived from it,
and the row's `suppressed` column is true. Global rows are never suppressed.
"""


def _cell(text: Any) -> str:
    """Text for one markdown table cell."""
    return " ".join(str(text if text is not None else "").split()).replace("|", "\\|")


def render_dictionary(manifest: Mapping[str, Any]) -> str:
    fmt = manifest["format"]
    lines = [
        "# Global Vision Warehouse: data dictionary",
        "",
        f"Version `{manifest['version_id']}`, generated {manifest['generated_at']} by run "
        f"`{manifest['run_id']}`. Generated from the dbt model documentation; do not edit. "
        "Machine-readable twin: `manifest.json`.",
        "",
        _READING.format(
            compression=fmt["compression"],
            row_group_size=fmt["row_group_size"],
            partition_min_rows=fmt["partition_min_rows"],
            versions_kept=fmt["versions_kept"],
        ),
        _PRIVACY.format(min_cell=fmt["min_cell"]),
        "## Datasets",
        "",
        "| dataset | kind | grain | rows | source model |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for name, d in manifest["datasets"].items():
        lines.append(f"| [`{name}`](#{name.replace('_', '-')}) | {d['kind']} | {_cell(d['grain'])} | "
                     f"{d['rows']:,} | `{d['model']}` |")
    for name, d in manifest["datasets"].items():
        lines += ["", f"### {name}", ""]
        if d.get("description"):
            lines += [_cell(d["description"]), ""]
        lines += [
            f"- Grain: {_cell(d['grain'])}",
            f"- Path: `exports/{d['path']}/` ({len(d['files'])} file(s), {d['rows']:,} rows, {d['bytes']:,} bytes)",
            f"- Source: dbt model `{d['model']}` (`{d['relation']}`)",
        ]
        part = d.get("partitioning")
        if part:
            lines.append(f"- Partitioned (hive) by `{part['key']}` = value of `{part['source_column']}`")
        supp = d.get("suppression")
        if supp:
            lines.append(
                f"- Small cells suppressed: {', '.join(f'`{c}`' for c in supp['count_columns'])} below "
                f"{supp['min_cell']} outside `{supp['scope_column']} = '{supp['global_scope']}'` "
                f"({supp['rows_suppressed']:,} rows)"
            )
        lines += ["", "| column | type | description |", "| --- | --- | --- |"]
        for column in d["columns"]:
            lines.append(f"| `{column['name']}` | {column['type']} | {_cell(column['description']) or '_(undocumented)_'} |")
    return "\n".join(lines) + "\n"
