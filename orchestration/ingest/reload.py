"""Backfills / reloads: forget loaded deliveries so that the next ingestion reads them again.

Ingestion never reads a content (SHA-256) already in the ledger. To reload a landing file,
its ledger rows (every delivery of that name) and all their records are deleted in one
transaction; the next run then finds the file new and loads it as delivery 1, exactly as a
first load of the landing zone would.

Outcomes of the records left behind may depend on the forgotten ones (a superseded vote, a
duplicate event, a workshop completed by a closure in the forgotten file). Their outcome is
set to null in the same transaction: a null outcome makes the next run recompute every
outcome (``outcomes_pending``), even if the forgotten file is no longer in the landing zone
and nothing new is read; the recomputation itself always covers every record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from orchestration.ingest.schema import ensure_raw_schema


class UnknownDeliveries(ValueError):
    """Reload of file names that are not in the load ledger."""

    def __init__(self, unknown: list[str], known: list[str]):
        self.unknown = unknown
        self.known = known
        listed = ", ".join(known) if known else "(none: the ledger is empty)"
        super().__init__(f"not in the load ledger: {', '.join(unknown)}; known file names: {listed}")


@dataclass
class ForgetReport:
    """What :func:`forget_deliveries` deleted."""

    file_names: list[str]
    ledger_rows: int = 0
    deleted: dict[str, int] = field(default_factory=dict)   # raw table -> rows deleted
    outcomes_reset: int = 0   # records of other files whose outcome must be recomputed

    @property
    def records(self) -> int:
        return sum(self.deleted.values())


# Records of the forgotten deliveries: every table keyed by the delivery's sha256.
_RECORD_TABLES = ("votes", "vote_quarantine", "workshop_events", "workshop_quarantine")

_FORGOTTEN_SQL = """
    create or replace temp table gvw_forget as
    select sha256 from raw.load_ledger where file_name in (select unnest($names::varchar[]))
"""

# Remaining vote records sharing a response_id with a forgotten record: their outcome
# (accepted / duplicate / superseded) is decided within that response_id only.
_RESET_VOTES_SQL = """
    update raw.votes set outcome = null
    where outcome is not null
      and sha256 not in (select sha256 from gvw_forget)
      and response_id in (select response_id from raw.votes where sha256 in (select sha256 from gvw_forget))
"""

# Remaining workshop events whose workshop may change: every outcome is decided within a
# workshop, except the repeated event_id rule, which can move a winner into another
# workshop; so: the forgotten events' workshops and the workshops of events sharing their event_id.
_RESET_WORKSHOPS_SQL = """
    create or replace temp table gvw_forget_ws as
    with gone as (
        select event_id, workshop_id from raw.workshop_events where sha256 in (select sha256 from gvw_forget)
    )
    select workshop_id from gone
    union
    select workshop_id from raw.workshop_events where event_id in (select event_id from gone);

    update raw.workshop_events set outcome = null
    where outcome is not null
      and sha256 not in (select sha256 from gvw_forget)
      and workshop_id in (select workshop_id from gvw_forget_ws)
"""


def loaded_file_names(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Every file name in the load ledger, sorted."""
    ensure_raw_schema(conn)
    return [r[0] for r in conn.execute("select distinct file_name from raw.load_ledger order by 1").fetchall()]


def forget_deliveries(conn: duckdb.DuckDBPyConnection, file_names: list[str] | None) -> ForgetReport:
    """Delete the ledger rows of ``file_names`` (every delivery of each name; ``None`` = every
    file) and all their records, in one transaction, so that the next ingestion reads those
    files again.

    Names are the ledger's ``file_name`` (relative to ``landing/``, e.g. ``votes/a.csv``).
    A name not in the ledger raises :class:`UnknownDeliveries` (a ``ValueError``) listing
    the known names; nothing is deleted then.
    """
    known = loaded_file_names(conn)
    if file_names is None:
        names = known
    else:
        names = sorted(set(file_names))
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise UnknownDeliveries(unknown, known)
    report = ForgetReport(file_names=names)
    if not names:
        return report
    conn.execute("begin transaction")
    try:
        conn.execute(_FORGOTTEN_SQL, {"names": names})
        # outcomes first, while the forgotten records still say which keys they held
        report.outcomes_reset = conn.execute(_RESET_VOTES_SQL).fetchone()[0]
        report.outcomes_reset += conn.execute(_RESET_WORKSHOPS_SQL).fetchone()[0]
        for table in _RECORD_TABLES:   # our own table names
            report.deleted[table] = conn.execute(
                f"delete from raw.{table} where sha256 in (select sha256 from gvw_forget)").fetchone()[0]
        report.ledger_rows = conn.execute(
            "delete from raw.load_ledger where sha256 in (select sha256 from gvw_forget)").fetchone()[0]
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    finally:
        conn.execute("drop table if exists gvw_forget; drop table if exists gvw_forget_ws")
    return report
