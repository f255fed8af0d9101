"""Reconciliation: for every loaded file, records read = the sum of its outcomes.

Read-only SQL over the raw tables (the Dagster check runs it on a read-only connection).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

_ROWS = """
    select sha256, record_number as n, outcome as code from raw.votes
    union all select sha256, record_number, reason from raw.vote_quarantine
    union all select sha256, line_number, outcome from raw.workshop_events
    union all select sha256, line_number, reason from raw.workshop_quarantine
"""


@dataclass
class FileReconciliation:
    file_name: str
    sha256: str
    source: str
    records_read: int
    outcomes: dict[str, int] = field(default_factory=dict)   # outcome or reason -> records
    accounted: int = 0
    pending: int = 0            # valid records whose outcome is not computed yet
    repeated_numbers: int = 0   # record/line numbers held by more than one row
    numbering_gap: bool = False  # votes: record numbers are not exactly 1..records_read

    @property
    def ok(self) -> bool:
        return (self.accounted == self.records_read and not self.pending and not self.repeated_numbers
                and not self.numbering_gap)

    def describe(self) -> str:
        parts = ", ".join(f"{k} {n:,}" for k, n in sorted(self.outcomes.items())) or "nothing"
        text = f"{self.file_name} (sha256 {self.sha256[:12]}): {self.records_read:,} records read, " \
               f"{self.accounted:,} accounted for ({parts})"
        problems = []
        if self.accounted != self.records_read:
            diff = self.records_read - self.accounted
            problems.append(f"{abs(diff):,} record(s) {'unaccounted for' if diff > 0 else 'too many'}")
        if self.pending:
            problems.append(f"{self.pending:,} record(s) without an outcome")
        if self.repeated_numbers:
            problems.append(f"{self.repeated_numbers:,} record number(s) used twice")
        if self.numbering_gap:
            problems.append("record numbers are not 1..records_read")
        return text + (": " + "; ".join(problems) if problems else "")


@dataclass
class Reconciliation:
    files: list[FileReconciliation]
    orphan_rows: dict[str, int]   # sha256 -> raw rows whose file is not in the ledger

    @property
    def failures(self) -> list[FileReconciliation]:
        return [f for f in self.files if not f.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.orphan_rows

    def describe(self) -> str:
        if self.ok:
            return (f"all {len(self.files)} loaded file(s) reconcile: every record read has exactly one "
                    "outcome")
        lines = [f"{len(self.failures)} file(s) do not reconcile:"] + [f"- {f.describe()}" for f in self.failures]
        lines += [f"- {n:,} raw row(s) of sha256 {sha[:12]}, a file missing from the load ledger"
                  for sha, n in sorted(self.orphan_rows.items())]
        return "\n".join(lines)


def reconcile(conn: duckdb.DuckDBPyConnection) -> Reconciliation:
    ledger = conn.execute(
        "select sha256, file_name, source, records_read from raw.load_ledger order by source, file_name, delivery_seq"
    ).fetchall()
    files = {sha: FileReconciliation(name, sha, source, int(records)) for sha, name, source, records in ledger}
    for sha, code, n in conn.execute(
            f"select sha256, coalesce(code, 'pending'), count(*) from ({_ROWS}) group by all").fetchall():
        if sha in files:
            files[sha].outcomes[code] = n
    orphans: dict[str, int] = {}
    for sha, count, distinct, lo, hi, pending in conn.execute(f"""
            select sha256, count(*), count(distinct n), min(n), max(n), count(*) filter (where code is null)
            from ({_ROWS}) group by sha256""").fetchall():
        f = files.get(sha)
        if f is None:
            orphans[sha] = count
            continue
        f.accounted, f.pending, f.repeated_numbers = count, pending, count - distinct
        if f.source == "votes" and count and (lo != 1 or hi != f.records_read):
            f.numbering_gap = True
    return Reconciliation(list(files.values()), orphans)
