"""Landing files: discovery, content hashes, encoding check and the split into lines.

Everything here works on whole files (one Python step per file, never per record): the
encoding check and the line split of votes files quarantined line by line are Arrow's
vectorised kernels (workshop files are split into lines by DuckDB, see ``workshops.py``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Source folders under landing/ and the file suffix each one holds.
SOURCES = {"votes": ".csv", "workshops": ".jsonl"}
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LandingFile:
    """One file of the landing zone, as found on disk (content not read yet)."""

    source: str       # "votes" or "workshops"
    path: Path
    file_name: str    # path relative to landing/, with "/" separators, e.g. "votes/x.csv"
    size_bytes: int
    mtime_ns: int

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


def _order_key(f: LandingFile) -> tuple[str, bytes]:
    # contract-decisions.md: files in lexicographic order of their names, as bytes
    return f.source, f.file_name.encode("utf-8", "surrogateescape")


def _walk(folder: Path) -> Iterator[Path]:
    """Files under ``folder``, skipping hidden entries (editor and upload temp files)."""
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.is_file():
            yield entry


def list_landing_files(landing_dir: Path) -> list[LandingFile]:
    """Votes CSV and workshop JSONL files under ``landing_dir``, in processing order.

    Suffixes are matched case-insensitively; other files are not part of the contract and
    are ignored.
    """
    landing_dir = Path(landing_dir)
    found: list[LandingFile] = []
    for source, suffix in SOURCES.items():
        for path in _walk(landing_dir / source):
            if path.suffix.lower() != suffix:
                continue
            stat = path.stat()
            found.append(LandingFile(
                source=source,
                path=path,
                file_name=path.relative_to(landing_dir).as_posix(),
                size_bytes=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
            ))
    return sorted(found, key=_order_key)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_array(data: bytes, *, skip_bom: bool = False) -> pa.Array:
    """The file as a one-value Arrow ``large_string`` array sharing the bytes (no copy),
    without a leading BOM when ``skip_bom``. Not validated: see :func:`is_utf8`."""
    buffer = pa.py_buffer(data)
    if skip_bom and data.startswith(UTF8_BOM):
        buffer = buffer.slice(len(UTF8_BOM))
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int64).tobytes())
    return pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, buffer])


def is_utf8(data: bytes) -> bool:
    """Whether the bytes are valid UTF-8 (Arrow's vectorised check: several times faster
    than decoding them to a Python string)."""
    try:
        text_array(data).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def first_utf8_error(data: bytes) -> str:
    """Where the first invalid UTF-8 byte sits, for the ledger message."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line})"
    return ""


def csv_header(data: bytes) -> list[str]:
    """The header fields of a CSV file as delivered (BOM removed, not normalised).

    Only the first record is parsed (RFC 4180 quoting, as DuckDB's reader does); an
    empty file has no header.
    """
    text = data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data
    head = text[: 1 << 20].decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(head, newline=""))
    return next(reader, [])


def has_blank_lines(data: bytes) -> bool:
    """Whether the file may hold an empty line (DuckDB's CSV reader counts those as rows
    of its line counter but returns nothing for them)."""
    start = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0   # searched in place: no copy
    return (data.startswith((b"\n", b"\r"), start) or data.find(b"\n\n", start) >= 0
            or data.find(b"\r\r", start) >= 0 or data.find(b"\n\r", start) >= 0)


def split_lines(data: bytes) -> pa.Table:
    """Physical lines of a file (split on LF; a CR before the LF and a leading BOM removed)
    as an Arrow table ``(line_number int64, line_text large_string)``.

    The file must be valid UTF-8; the split is vectorised (no per-line Python).
    """
    body = data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data
    parts = pc.split_pattern(pa.array([body], pa.large_binary()), pattern=b"\n")
    lines = parts.flatten()
    if len(lines) and body.endswith(b"\n"):
        # the split leaves an empty piece after the final line break: not a line
        lines = lines.slice(0, len(lines) - 1)
    lines = pc.cast(lines, pa.large_string())
    lines = pc.replace_substring_regex(lines, pattern="\r$", replacement="")
    numbers = pa.array(np.arange(1, len(lines) + 1, dtype=np.int64))
    return pa.table({"line_number": numbers, "line_text": lines})


def decoded_text(data: bytes) -> bytes:
    """A file that is not valid UTF-8 made valid: each invalid byte becomes U+FFFD, so that
    its lines can be quarantined as text."""
    return data.decode("utf-8", errors="replace").encode("utf-8")


def decoded_lines(data: bytes) -> pa.Table:
    """Like :func:`split_lines` for a file that is not valid UTF-8 (see :func:`decoded_text`)."""
    return split_lines(decoded_text(data))
