"""``gvw``: the command line of Global Vision Warehouse.

    gvw setup                      create the data directory and the Dagster instance
    gvw generate [--scale S] ...   write the reference landing zone and its answer key
    gvw run [--incremental]        materialize the assets in-process
    gvw reload FILE... | --all     re-ingest landing files as on a first load (backfill)
    gvw status                     headline figures, ledger and last run
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import duckdb

from orchestration.instance import ensure_dagster_home
from orchestration.locking import RunLockTimeout, run_lock
from orchestration.progress import root_cause
from orchestration.settings import Settings, load_settings


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit code 1."""


def _settings() -> Settings:
    settings = load_settings()
    settings.ensure_dirs()
    # Child processes (dbt) resolve the same data directory as this one.
    os.environ["GVW_DATA_DIR"] = str(settings.data_dir)
    ensure_dagster_home(settings)
    return settings


def _landing_has_files(settings: Settings) -> bool:
    return any(p.is_file() for p in settings.landing_dir.rglob("*") if p.suffix in {".csv", ".jsonl"})


def cmd_setup(args: argparse.Namespace) -> int:
    settings = _settings()
    print(f"data directory: {settings.data_dir}")
    print(f"dagster home:   {os.environ['DAGSTER_HOME']}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    settings = _settings()
    out = Path(args.out).resolve() if args.out else settings.data_dir
    if args.if_empty and out == settings.data_dir and _landing_has_files(settings):
        print(f"landing zone {settings.landing_dir} already has files: not generating")
        return 0
    from orchestration.generate import generate_landing_zone

    started = time.monotonic()
    key = generate_landing_zone(out, scale=args.scale, seed=args.seed, overwrite=args.overwrite)
    took = time.monotonic() - started
    figures = key.get("figures", {})
    print(
        f"generated scale {args.scale:g} (seed {args.seed}) into {out / 'landing'} in {took:.1f}s: "
        f"{figures.get('votes', 0):,} votes, {figures.get('workshops', 0):,} workshops accepted; "
        f"answer key {out / 'expected.json'}"
    )
    return 0


def _find_table(conn: duckdb.DuckDBPyConnection, name: str) -> str | None:
    row = conn.execute(
        "select table_schema from information_schema.tables where table_name = ? order by table_schema limit 1",
        [name],
    ).fetchall()
    return f"{row[0][0]}.{name}" if row else None


def headline_figures(settings: Settings) -> dict[str, int] | None:
    """The one row of ``rpt_headline_figures``, read through a read-only connection."""
    if not settings.warehouse_path.exists():
        return None
    conn = duckdb.connect(str(settings.warehouse_path), read_only=True, config=settings.duckdb_config())
    try:
        table = _find_table(conn, "rpt_headline_figures")
        if table is None:
            return None
        cursor = conn.execute(f"select * from {table}")  # table name comes from the catalog
        columns = [d[0] for d in cursor.description]
        row = cursor.fetchall()
        return dict(zip(columns, row[0])) if row else None
    finally:
        conn.close()


def _print_figures(figures: dict[str, int] | None) -> None:
    if not figures:
        print("headline figures: not built yet")
        return
    print("headline figures:")
    for name, value in figures.items():
        print(f"  {name:<28} {value:>10,}" if isinstance(value, int) else f"  {name:<28} {value!s:>10}")


CLI_RUN_TAG = "gvw/launcher"


def recover_interrupted_runs(instance) -> list[str]:
    """Fail the CLI runs that never finished, and free their concurrency slots.

    Only called while holding the data directory's run lock, so no other CLI run is alive:
    a CLI run still marked as started was killed (power cut, SIGKILL). Left alone, its claim
    on the ``duckdb_warehouse`` pool would block every later run.
    """
    import dagster as dg

    stale = instance.get_run_records(filters=dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING],
        tags={CLI_RUN_TAG: "cli"},
    ))
    for record in stale:
        run = record.dagster_run
        instance.report_run_failed(run, message="interrupted: its gvw process ended before the run finished")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return [record.dagster_run.run_id for record in stale]


class _SkippedCheckNoise(logging.Filter):
    """Drops Dagster's "blocking asset check emitted no result" warnings: when a run has nothing
    new, the dbt and quality steps are skipped on purpose, and Dagster would print one such
    line per check and downstream step (hundreds). The progress lines already say "skip"."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "emitted no result in step" not in record.getMessage()


def _execute(job_name: str, run_config: dict | None = None):
    """Run one job of the code location in this process, against the data directory's instance."""
    import dagster as dg

    logging.getLogger("dagster._core.execution.plan.active").addFilter(_SkippedCheckNoise())

    from orchestration.definitions import defs

    job = defs().resolve_job_def(job_name)
    with dg.DagsterInstance.get() as instance:
        for run_id in recover_interrupted_runs(instance):
            print(f"marked interrupted run {run_id[:8]} as failed and freed its warehouse slot")
        return job.execute_in_process(
            instance=instance,
            run_config={**(run_config or {}), "loggers": {"gvw_progress": {}}},
            tags={CLI_RUN_TAG: "cli"},
            raise_on_error=False,
        )


def _run_job(settings: Settings, job_name: str, wait: float, run_config: dict | None = None) -> int:
    print(f"gvw: job {job_name} on {settings.data_dir}")
    started = time.monotonic()
    try:
        with run_lock(settings.data_dir, wait_seconds=wait):
            result = _execute(job_name, run_config)
    except RunLockTimeout as exc:
        raise CliError(str(exc)) from None
    took = time.monotonic() - started
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        where = failures[0].step_key if failures else "the run"
        reason = root_cause(failures[0].step_failure_data.error) if failures else "see the run's logs"
        raise CliError(
            f"run {result.run_id[:8]} failed in {where} after {took:.1f}s: {reason} "
            f"(details: `make dev`, run {result.run_id})"
        )
    print(f"run {result.run_id} succeeded in {took:.1f}s")
    _print_figures(headline_figures(settings))
    print(f"warehouse: {settings.warehouse_path}")
    print(f"exports:   {settings.exports_dir}")
    print(f"reports:   {settings.quality_dir}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.assets.ingest import INGEST_OP_NAME

    run_config = {"ops": {INGEST_OP_NAME: {"config": {"force": True}}}} if args.force else None
    return _run_job(_settings(), "incremental" if args.incremental else "refresh_all", args.wait, run_config)


def cmd_reload(args: argparse.Namespace) -> int:
    """Backfill: forget the chosen deliveries, read them again, and rebuild everything downstream."""
    from orchestration.assets.ingest import reload_run_config

    if bool(args.files) == bool(args.all):
        raise CliError("name the landing files to reload (as in the ledger, e.g. votes/export.csv) or pass --all")
    return _run_job(_settings(), "incremental", args.wait, reload_run_config(None if args.all else args.files))


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings()
    print(f"data directory: {settings.data_dir}")
    if not settings.warehouse_path.exists():
        print("warehouse: not built yet (run `gvw run`)")
        return 0
    _print_figures(headline_figures(settings))
    conn = duckdb.connect(str(settings.warehouse_path), read_only=True, config=settings.duckdb_config())
    try:
        ledger = _find_table(conn, "load_ledger")
        if ledger:
            rows = conn.execute(
                f"select source, count(*), sum(records_read), max(first_seen_at) from {ledger} group by source order by source"
            ).fetchall()
            for source, files, records, last in rows:
                print(f"ledger {source}: {files} files, {records:,} records, last delivery {last}")
    finally:
        conn.close()
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(limit=1)
        if records:
            run = records[0].dagster_run
            print(f"last run: {run.job_name} {run.run_id[:8]} {run.status.value}")
        else:
            print("last run: none")
    audit = settings.quality_dir / "audit_report.json"
    if audit.exists():
        report = json.loads(audit.read_text(encoding="utf-8"))
        checks = report.get("quality_checks") or []
        failed = sorted({c["frame"] for c in checks if not c.get("success")})
        print(f"quality: {len(checks) - len(failed)}/{len(checks)} suites passed"
              + (f" (failing: {', '.join(failed)})" if failed else "")
              + f"; {report.get('accounted_for', {}).get('statement', '')}")
        print(f"         report {audit.with_suffix('.html')} ({report.get('generated_at', '?')})")
    else:
        print("quality: no audit report yet")
    manifest = settings.exports_dir / "manifest.json"
    if manifest.exists():
        info = json.loads(manifest.read_text(encoding="utf-8"))
        print(f"exports: version {info.get('version_id', '?')} generated {info.get('generated_at', '?')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gvw", description="Global Vision Warehouse: landing zone -> DuckDB -> dbt -> quality -> Parquet.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("setup", help="create the data directory and its Dagster instance")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("generate", help="write the reference landing zone and its answer key (expected.json)")
    p.add_argument("--scale", type=float, default=1.0, help="volume multiplier (1 = the published consultation)")
    p.add_argument("--seed", type=int, default=2017, help="random seed (same seed, same bytes)")
    p.add_argument("--out", help="target directory (default: $GVW_DATA_DIR)")
    p.add_argument("--if-empty", action="store_true", help="do nothing when the landing zone already has files")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier generation in the target")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("run", help="materialize every asset in-process (job refresh_all)")
    p.add_argument("--incremental", action="store_true", help="only new landing files, then everything downstream")
    p.add_argument("--force", action="store_true",
                   help="rebuild everything downstream even when nothing is new and it is all up to date")
    p.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait for another run on the same data directory (default 600)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("reload", help="re-ingest landing files (or --all) as on a first load, then everything downstream")
    p.add_argument("files", nargs="*", metavar="FILE", help="file names relative to landing/, e.g. votes/export_01.csv")
    p.add_argument("--all", action="store_true", help="reload every delivered file")
    p.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait for another run on the same data directory (default 600)")
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("status", help="headline figures, load ledger, last run, export version")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"gvw: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, duckdb.Error) as exc:
        print(f"gvw: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``gvw`` console script: :func:`main`, then exit without tearing the interpreter
    down object by object.

    After a run the process holds millions of small objects (Dagster's definitions and
    events, the dbt manifest, Great Expectations): freeing them one by one at exit took
    5-9 s after the last line was printed (measured). Everything that writes has been
    closed by then (the Dagster instance and every DuckDB connection are context managers),
    so the exit handlers run, the output is flushed, and the process ends."""
    code = main()  # an exception (argparse's SystemExit among them) ends the usual way
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
