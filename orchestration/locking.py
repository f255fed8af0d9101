"""One pipeline run per data directory at a time.

DuckDB lets one process write a database file; two runs on the same data directory would
fail on the file lock half-way (or, worse, interleave ingestion and dbt). Runs started from
the CLI take an exclusive advisory lock on ``$GVW_DATA_DIR/.gvw-run.lock`` first: a second run
waits for it up to a timeout, then stops with a clear message. The lock is released by the
kernel when the process ends, so a crashed run never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path


class RunLockTimeout(Exception):
    """Another run held the data directory for longer than we were willing to wait."""


@contextlib.contextmanager
def run_lock(data_dir: Path, wait_seconds: float, poll_seconds: float = 0.5) -> Iterator[None]:
    path = data_dir / ".gvw-run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                    raise RunLockTimeout(
                        f"another run holds {data_dir} ({holder}); waited {wait_seconds:g}s — "
                        "retry later or raise --wait"
                    ) from None
                time.sleep(poll_seconds)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
