"""What an ingestion run did: per file and in total."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FileLoad:
    """A file parsed and checked into temp tables, ready to be written.

    ``writes`` are the statements (SQL, parameters) that copy it into the raw tables: the
    caller runs them in the file's transaction, together with the ledger row. Parsing
    happens before, outside that transaction, because a DuckDB error inside a transaction
    aborts it and the loaders recover from reader errors (lenient retry, whole-file
    quarantine).
    """

    records_read: int
    file_status: str
    extra_columns: list[str] = field(default_factory=list)
    message: str = ""
    writes: list[tuple[str, dict]] = field(default_factory=list)
    temp_tables: list[str] = field(default_factory=list)


@dataclass
class FileReport:
    """One landing file seen by a run."""

    file_name: str                 # relative to landing/
    source: str                    # votes / workshops
    sha256: str
    size_bytes: int
    delivery: str                  # new (first delivery of the name), changed (same name, new content), known
    delivery_seq: int              # for known files: the ledger's
    read: bool                     # loaded by this run (False: already in the ledger)
    file_status: str = ""          # loaded / missing_column / not_utf8 / unreadable (read files)
    records_read: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # after this run's outcome recomputation
    extra_columns: list[str] = field(default_factory=list)
    message: str = ""
    elapsed_seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return self.outcomes.get("accepted", 0)


@dataclass
class IngestReport:
    """The result of :func:`orchestration.ingest.ingest_landing_zone`."""

    run_id: str
    landing_dir: Path
    files: list[FileReport]
    outcomes_recomputed: bool
    # previously loaded records whose outcome this run changed (e.g. now superseded)
    earlier_outcomes_changed: int
    # the whole raw layer after the run: source -> outcome or reason -> records
    totals: dict[str, dict[str, int]]
    elapsed_seconds: float

    @property
    def files_seen(self) -> int:
        return len(self.files)

    @property
    def read_files(self) -> list[FileReport]:
        return [f for f in self.files if f.read]

    @property
    def files_read(self) -> int:
        return len(self.read_files)

    @property
    def files_skipped(self) -> int:
        return self.files_seen - self.files_read

    @property
    def new_files(self) -> list[str]:
        return [f.file_name for f in self.read_files if f.delivery == "new"]

    @property
    def changed_files(self) -> list[str]:
        return [f.file_name for f in self.read_files if f.delivery == "changed"]

    @property
    def records_read(self) -> int:
        return sum(f.records_read for f in self.read_files)

    @property
    def outcomes(self) -> dict[str, int]:
        """Outcome or reason code -> records, over the files read by this run."""
        out: dict[str, int] = {}
        for f in self.read_files:
            for k, n in f.outcomes.items():
                out[k] = out.get(k, 0) + n
        return dict(sorted(out.items()))

    def outcomes_of(self, source: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.read_files:
            if f.source == source:
                for k, n in f.outcomes.items():
                    out[k] = out.get(k, 0) + n
        return dict(sorted(out.items()))

    @property
    def accepted(self) -> int:
        return self.outcomes.get("accepted", 0)

    @property
    def quarantined(self) -> int:
        """Records of this run's files held back by a reason code (not duplicates etc.)."""
        kept = {"accepted", "duplicate", "superseded", "incomplete_workshop"}
        return sum(n for k, n in self.outcomes.items() if k not in kept)

    def summary(self) -> str:
        return (f"ingest {self.run_id}: {self.files_read} file(s) read ({len(self.new_files)} new, "
                f"{len(self.changed_files)} changed), {self.files_skipped} skipped; "
                f"{self.records_read:,} records, {self.accepted:,} accepted, {self.quarantined:,} quarantined "
                f"in {self.elapsed_seconds:.2f}s")
