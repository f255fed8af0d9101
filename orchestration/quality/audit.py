"""The audit and reconciliation report: ``quality/audit_report.json`` and ``audit_report.html``.

Answers three questions from the warehouse alone (read-only):

1. Was every delivered record accounted for? Per delivered file (``raw.load_ledger``) the
   records read and the records with each outcome in ``raw.votes``, ``raw.vote_quarantine``,
   ``raw.workshop_events`` and ``raw.workshop_quarantine``; one line says whether every
   file balances (records read = sum of outcomes).
2. Which rules did the data break? Quarantine counts by reason with a few examples (masked
   again), incomplete workshops, participant-count mismatches, and the latest result of
   every GX suite with a link to its Data Docs page.
3. Does the published figure follow from the raw data? The headline figures recomputed
   here from the raw layer and the reference country list, beside ``rpt_headline_figures``.

Both files are self-contained (inline CSS, no external resource) and written atomically.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from orchestration.quality.atomic import write_text_atomic
from orchestration.quality.frames import Catalog, resolve_tables
from orchestration.quality.runner import Connect, latest_outcomes
from orchestration.quality.scrub import mask_text, scrub
from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT

REPORT_JSON = "audit_report.json"
REPORT_HTML = "audit_report.html"
EXAMPLES_PER_REASON = 3
EXAMPLE_TEXT_CHARS = 300
HTML_ROW_LIMIT = 500

HEADLINE_FIGURES = (
    "votes",
    "workshops",
    "workshop_participants",
    "participants",
    "library_experience_years",
    "un_member_states",
    "countries_and_areas",
    "age_groups_represented",
    "library_types_represented",
    "regions_represented",
)

_OUTCOMES_SQL = """
select sha256, outcome, count(*) as records from {votes} group by all
union all select sha256, reason, count(*) from {vote_quarantine} group by all
union all select sha256, outcome, count(*) from {workshop_events} group by all
union all select sha256, reason, count(*) from {workshop_quarantine} group by all
"""

_LEDGER_SQL = """
select source, file_name, delivery_seq, sha256, size_bytes, first_seen_at, run_id, file_status,
    extra_columns, message, records_read
from {load_ledger} order by source, file_name, delivery_seq
"""

_QUARANTINE_SQL = """
with q as (
    select 'votes' as source, reason, file_name, record_number as record, detail, record_text
    from {vote_quarantine}
    union all
    select 'workshops', reason, file_name, line_number, detail, record_text from {workshop_quarantine}
),
ranked as (
    select *, count(*) over (partition by source, reason) as records,
        row_number() over (partition by source, reason order by file_name, record) as k
    from q
)
select source, reason, records, file_name, record, detail, left(record_text, $chars) as record_text
from ranked where k <= $examples order by source, reason, k
"""

_INCOMPLETE_SQL = """
select workshop_id, count(*) as valid_events,
    bool_or(event_type = 'workshop_registered') as registered,
    bool_or(event_type = 'workshop_closed') as closed,
    string_agg(distinct file_name, ', ' order by file_name) as files
from {workshop_events} where outcome = 'incomplete_workshop'
group by workshop_id order by workshop_id
"""

_MISMATCH_SQL = """
with accepted as (select * from {workshop_events} where outcome = 'accepted'),
closed as (select workshop_id, reported_participants from accepted where event_type = 'workshop_closed'),
checked_in as (
    select workshop_id, count(*) as checked_in from accepted
    where event_type = 'participant_checked_in' group by workshop_id
)
select c.workshop_id, coalesce(k.checked_in, 0) as checked_in, c.reported_participants as reported,
    coalesce(k.checked_in, 0) - c.reported_participants as difference
from closed c left join checked_in k using (workshop_id)
where coalesce(k.checked_in, 0) is distinct from c.reported_participants
order by c.workshop_id
"""

# The headline figures, recomputed from the raw layer with the contract's definitions
# (section 3 of the landing-zone contract) - independently of the dbt models.
_RAW_FIGURES_SQL = """
with participants as (
    select country, library_type, age_group, years_experience from {votes} where outcome = 'accepted'
    union all
    select country, library_type, age_group, years_experience from {workshop_events}
    where outcome = 'accepted' and event_type = 'participant_checked_in'
),
-- Every figure below follows from the participants per (country, library type, age group):
-- a few thousand groups instead of millions of participants.
grouped as (
    select country, library_type, age_group, count(*) as n, sum(years_experience) as years
    from participants group by all
),
countries as (select * from gvw_reference_countries)
select
    (select count(*) from {votes} where outcome = 'accepted') as votes,
    (select count(distinct workshop_id) from {workshop_events}
        where outcome = 'accepted' and event_type = 'workshop_registered') as workshops,
    (select count(*) from {workshop_events}
        where outcome = 'accepted' and event_type = 'participant_checked_in') as workshop_participants,
    (select coalesce(sum(n), 0) from grouped)::bigint as participants,
    (select coalesce(sum(years), 0) from grouped)::bigint as library_experience_years,
    (select count(distinct g.country) from grouped g join countries c on c.country_code = g.country
        where c.is_un_member) as un_member_states,
    (select count(distinct country) from grouped) as countries_and_areas,
    (select count(distinct age_group) from grouped) as age_groups_represented,
    (select count(distinct library_type) from grouped) as library_types_represented,
    (select count(distinct c.region_code) from grouped g join countries c on c.country_code = g.country)
        as regions_represented
"""


def _records(conn: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None) -> list[dict]:
    cursor = conn.execute(sql, dict(params or {}))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _reference_countries() -> pd.DataFrame:
    with (DBT_PROJECT_DIR / "seeds" / "countries.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return pd.DataFrame(
        {
            "country_code": [r["country_code"].strip().upper() for r in rows],
            "region_code": [r["region_code"].strip() for r in rows],
            "is_un_member": [r["is_un_member"].strip().lower() == "true" for r in rows],
        }
    )


def code_version() -> str | None:
    """The git commit of the project, when it is a git checkout with git installed."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def dbt_manifest_sha256() -> str | None:
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest.is_file():
        return None
    digest = hashlib.sha256()
    with manifest.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _reconciliation(ledger: list[dict], outcomes: list[dict]) -> tuple[list[dict], dict[str, Any]]:
    by_file: dict[str, dict[str, int]] = {}
    for row in outcomes:
        by_file.setdefault(row["sha256"], {})[row["outcome"]] = int(row["records"])
    files = []
    for entry in ledger:
        counts = dict(sorted(by_file.pop(entry["sha256"], {}).items()))
        accounted = sum(counts.values())
        files.append(
            {**entry, "outcomes": counts, "records_with_outcome": accounted,
             "balanced": entry["records_read"] == accounted}
        )
    # Outcome rows whose file is not in the ledger: records nobody can trace to a delivery.
    orphans = {sha: sum(c.values()) for sha, c in by_file.items()}
    unbalanced = [f for f in files if not f["balanced"]]
    read = sum(int(f["records_read"] or 0) for f in files)
    accounted = sum(f["records_with_outcome"] for f in files)
    ok = not unbalanced and not orphans
    if ok:
        statement = (
            f"Every delivered record is accounted for: {read:,} records read from {len(files):,} delivered "
            f"files, and {accounted:,} records with exactly one outcome; every file balances "
            f"(records read = sum of its outcomes)."
        )
    else:
        parts = []
        if unbalanced:
            parts.append(
                f"{len(unbalanced)} file(s) do not balance: "
                + "; ".join(
                    f"{f['file_name']} (delivery {f['delivery_seq']}) read {f['records_read']:,}, "
                    f"outcomes {f['records_with_outcome']:,}"
                    for f in unbalanced[:10]
                )
            )
        if orphans:
            parts.append(f"{sum(orphans.values()):,} record(s) belong to no delivered file in the ledger")
        statement = "NOT every delivered record is accounted for: " + "; ".join(parts) + "."
    summary = {
        "all_records_accounted_for": ok,
        "statement": statement,
        "files": len(files),
        "records_read": read,
        "records_with_outcome": accounted,
        "unbalanced_files": [f["file_name"] for f in unbalanced],
        "records_without_ledger_entry": sum(orphans.values()),
    }
    return files, summary


def _published_figures(conn: duckdb.DuckDBPyConnection, catalog: Catalog) -> dict[str, Any]:
    conn.register("gvw_reference_countries", _reference_countries())
    try:
        recomputed = _records(conn, resolve_tables(_RAW_FIGURES_SQL, catalog))[0]
    finally:
        conn.unregister("gvw_reference_countries")
    published: dict[str, Any] | None = None
    if catalog.has("rpt_headline_figures"):
        rows = _records(conn, f"select * from {catalog.qualified('rpt_headline_figures')}")
        published = rows[0] if rows else None
    figures = []
    for name in HEADLINE_FIGURES:
        value = None if published is None else published.get(name)
        figures.append(
            {"figure": name, "published": value, "recomputed_from_raw": recomputed[name],
             "matches": value is not None and int(value) == int(recomputed[name])}
        )
    all_match = published is not None and all(f["matches"] for f in figures)
    if published is None:
        statement = "The published figures (rpt_headline_figures) have not been built yet."
    elif all_match:
        statement = "Every published headline figure equals its recomputation from the raw layer."
    else:
        off = [f["figure"] for f in figures if not f["matches"]]
        statement = "Published figures that do NOT follow from the raw layer: " + ", ".join(off) + "."
    return {"available": published is not None, "all_match": all_match, "statement": statement, "figures": figures}


def _quality_checks(quality_dir: Path) -> list[dict[str, Any]]:
    checks = []
    for o in latest_outcomes(quality_dir):
        page = o.get("docs_page")
        if page:
            try:
                page = Path(page).resolve().relative_to(quality_dir.resolve()).as_posix()
            except ValueError:
                page = None
        checks.append(
            {k: o.get(k) for k in ("frame", "suite", "table", "success", "evaluated", "failed", "failing",
                                   "frame_rows", "run_name", "validated_at")}
            | {"docs_page": page}
        )
    return checks


def build_audit(conn: duckdb.DuckDBPyConnection, *, run_id: str, quality_dir: Path) -> dict[str, Any]:
    catalog = Catalog(conn)
    ledger = _records(conn, resolve_tables(_LEDGER_SQL, catalog))
    outcomes = _records(conn, resolve_tables(_OUTCOMES_SQL, catalog))
    files, summary = _reconciliation(ledger, outcomes)

    totals: dict[tuple[str, str], int] = {}
    source_of = {e["sha256"]: e["source"] for e in ledger}
    for row in outcomes:
        key = (source_of.get(row["sha256"], "unknown"), row["outcome"])
        totals[key] = totals.get(key, 0) + int(row["records"])

    quarantine: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _records(
        conn, resolve_tables(_QUARANTINE_SQL, catalog), {"chars": EXAMPLE_TEXT_CHARS, "examples": EXAMPLES_PER_REASON}
    ):
        group = quarantine.setdefault(
            (row["source"], row["reason"]),
            {"source": row["source"], "reason": row["reason"], "records": int(row["records"]), "examples": []},
        )
        group["examples"].append(
            {"file_name": row["file_name"], "record": row["record"],
             "detail": mask_text(row["detail"] or ""), "record_text": mask_text(row["record_text"] or "")}
        )

    mismatches = _records(conn, resolve_tables(_MISMATCH_SQL, catalog))
    report = {
        "title": "Global Vision Warehouse - data audit and reconciliation",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "code_version": code_version(),
        "dbt_manifest_sha256": dbt_manifest_sha256(),
        "accounted_for": summary,
        "files": files,
        "outcomes_by_source": [
            {"source": s, "outcome": o, "records": n} for (s, o), n in sorted(totals.items())
        ],
        "quarantine": list(quarantine.values()),
        "incomplete_workshops": _records(conn, resolve_tables(_INCOMPLETE_SQL, catalog)),
        "participant_count_mismatches": mismatches,
        "published_figures": _published_figures(conn, catalog),
        "quality_checks": _quality_checks(quality_dir),
        "data_docs": "data_docs/index.html",
    }
    # Defensive: nothing e-mail-shaped leaves this function, whatever the warehouse holds.
    return scrub(json.loads(json.dumps(report, default=_json_default)))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def write_audit_report(*, connect: Connect, quality_dir: Path, run_id: str) -> tuple[Path, Path, dict[str, Any]]:
    """Build the report through ``connect`` (read-only; closed before writing) and write both files."""
    with connect() as conn:
        report = build_audit(conn, run_id=run_id, quality_dir=quality_dir)
    json_path = quality_dir / REPORT_JSON
    html_path = quality_dir / REPORT_HTML
    write_text_atomic(json_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(html_path, render_html(report))
    return json_path, html_path, report


# ---------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 4px}h2{font-size:1.2rem;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a;font-size:.9rem}.verdict{padding:12px 16px;border-radius:6px;margin:12px 0;font-weight:600}
.ok{background:#dafbe1;border:1px solid #4ac26b}.bad{background:#ffebe9;border:1px solid #ff8182}
.warn{background:#fff8c5;border:1px solid #d4a72c}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.88rem;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eaeef2}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:.82rem;word-break:break-all}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}.note{color:#57606a;font-size:.85rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _e(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows[:HTML_ROW_LIMIT]:
        cells = "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    more = (
        f'<p class="note">{len(rows) - HTML_ROW_LIMIT:,} more rows in {REPORT_JSON}.</p>'
        if len(rows) > HTML_ROW_LIMIT else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _status(ok: bool) -> str:
    return '<span class="pass">pass</span>' if ok else '<span class="fail">FAIL</span>'


def render_html(report: Mapping[str, Any]) -> str:
    acc = report["accounted_for"]
    figures = report["published_figures"]
    checks = report["quality_checks"]
    failed_checks = [c for c in checks if not c["success"]]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{_e(report['title'])}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(report['title'])}</h1>",
        f"<p class=\"meta\">Generated {_e(report['generated_at'])} &middot; run <code>{_e(report['run_id'])}</code>"
        f" &middot; code version <code>{_e(report['code_version'] or 'unknown')}</code>"
        f" &middot; dbt manifest sha256 <code>{_e(report['dbt_manifest_sha256'] or 'none')}</code></p>",
        f"<div class=\"verdict {'ok' if acc['all_records_accounted_for'] else 'bad'}\">{_e(acc['statement'])}</div>",
        f"<div class=\"verdict {'ok' if figures['all_match'] else 'bad'}\">{_e(figures['statement'])}</div>",
        "<div class=\"verdict "
        + ("ok\">Every data-quality suite passed." if not failed_checks else
           "bad\">Data-quality suites with failed expectations: "
           + _e(", ".join(c["frame"] for c in failed_checks)) + ".")
        + f" <a href=\"{_e(report['data_docs'])}\">Open the Data Docs</a></div>",
        "<h2>Delivered files</h2>",
        _table(
            ["source", "file", "delivery", "SHA-256", "bytes", "first seen (UTC)", "status", "records read",
             "outcomes", "balanced"],
            [
                [_e(f["source"]), _e(f["file_name"]), _num(f["delivery_seq"]), f"<span class=\"mono\">{_e(f['sha256'])}</span>",
                 _num(f["size_bytes"]), _e(f["first_seen_at"]), _e(f["file_status"]), _num(f["records_read"]),
                 _e(", ".join(f"{k} {v:,}" for k, v in f["outcomes"].items())), _status(f["balanced"])]
                for f in report["files"]
            ],
            numeric=(2, 4, 7),
        ),
        "<h2>Outcomes by source</h2>",
        _table(["source", "outcome", "records"],
               [[_e(o["source"]), _e(o["outcome"]), _num(o["records"])] for o in report["outcomes_by_source"]],
               numeric=(2,)),
        "<h2>Data-quality suites (Great Expectations)</h2>",
        _table(
            ["frame", "suite", "table", "status", "expectations", "failed", "failing expectations", "validated", "page"],
            [
                [_e(c["frame"]), _e(c["suite"]), _e(c["table"]), _status(c["success"]), _num(c["evaluated"]),
                 _num(c["failed"]), _e(", ".join(c["failing"] or [])), _e(c["validated_at"]),
                 f"<a href=\"{_e(c['docs_page'])}\">Data Docs</a>" if c.get("docs_page") else ""]
                for c in checks
            ],
            numeric=(4, 5),
        ),
        "<h2>Quarantine by reason</h2>",
        _table(
            ["source", "reason", "records", "examples (masked)"],
            [
                [_e(q["source"]), _e(q["reason"]), _num(q["records"]),
                 "<br>".join(
                     f"{_e(x['file_name'])} #{_e(x['record'])}: {_e(x['detail'])}<br><code>{_e(x['record_text'])}</code>"
                     for x in q["examples"])]
                for q in report["quarantine"]
            ],
            numeric=(2,),
        ),
        f"<h2>Incomplete workshops ({len(report['incomplete_workshops']):,})</h2>",
        "<p class=\"note\">Valid events of workshops without both a valid registration and a valid closure: "
        "kept, reported, not counted.</p>",
        _table(
            ["workshop", "valid events", "registered", "closed", "files"],
            [[_e(w["workshop_id"]), _num(w["valid_events"]), _e(w["registered"]), _e(w["closed"]), _e(w["files"])]
             for w in report["incomplete_workshops"]],
            numeric=(1,),
        ),
        f"<h2>Participant-count mismatches ({len(report['participant_count_mismatches']):,}, warnings)</h2>",
        "<p class=\"note\">Counting workshops whose distinct check-ins differ from the participants reported at "
        "closing. The check-ins count.</p>",
        _table(
            ["workshop", "checked in", "reported", "difference"],
            [[_e(m["workshop_id"]), _num(m["checked_in"]), _num(m["reported"]), _num(m["difference"])]
             for m in report["participant_count_mismatches"]],
            numeric=(1, 2, 3),
        ),
        "<h2>Published figures and the raw data</h2>",
        _table(
            ["figure", "published (rpt_headline_figures)", "recomputed from raw", "matches"],
            [[_e(f["figure"]), _num(f["published"]), _num(f["recomputed_from_raw"]), _status(f["matches"])]
             for f in figures["figures"]],
            numeric=(1, 2),
        ),
        "</main></body></html>\n",
    ]
    return "\n".join(parts)
