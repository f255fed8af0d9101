"""Vectorised text building: timestamps, CSV fields and lines, JSON lines, file bytes.

Bulk records are built column by column as Arrow string arrays (no per-record Python);
the hand-made dirty records use the small pure-Python twins of the same helpers, so both
kinds are quoted and formatted identically.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Date strings are looked up in a table covering the days any record can fall on.
_TABLE_START = dt.date(2016, 12, 1)
_TABLE_DAYS = 500
_TABLE_START_DAY = (_TABLE_START - dt.date(1970, 1, 1)).days

# Timestamp styles of a rendered record.
TS_OFFSET = 0    # 2017-08-21T14:03:22+02:00
TS_ZULU = 1      # 2017-08-21T12:03:22Z
TS_COMPACT = 2   # 2017-08-21T14:03:22+0200
TS_MINUTES = 3   # 2017-08-21T14:03+02:00 (only for instants on a whole minute)
TS_MILLIS = 4    # 2017-08-21T14:03:22.250+02:00 (the instant carries the milliseconds)

_DATE_TABLE: pa.Array | None = None
_TIME_TABLE: pa.Array | None = None


def _tables() -> tuple[pa.Array, pa.Array]:
    global _DATE_TABLE, _TIME_TABLE
    if _DATE_TABLE is None:
        _DATE_TABLE = pa.array([(_TABLE_START + dt.timedelta(days=i)).isoformat() for i in range(_TABLE_DAYS)])
        _TIME_TABLE = pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)])
    return _DATE_TABLE, _TIME_TABLE


def offset_text(minutes: int, compact: bool = False) -> str:
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(int(minutes)), 60)
    return f"{sign}{h:02d}{m:02d}" if compact else f"{sign}{h:02d}:{m:02d}"


def format_timestamps(utc_seconds: np.ndarray, offset_minutes: np.ndarray, style: np.ndarray,
                      millis: np.ndarray | None = None) -> pa.Array:
    """ISO 8601 texts of UTC instants, written in local time with the given offsets."""
    date_table, time_table = _tables()
    utc_seconds = np.asarray(utc_seconds, dtype=np.int64)
    offset_minutes = np.asarray(offset_minutes, dtype=np.int64)
    style = np.asarray(style, dtype=np.int8)
    zulu = style == TS_ZULU
    shown = np.where(zulu, utc_seconds, utc_seconds + offset_minutes * 60)
    day = shown // 86400 - _TABLE_START_DAY
    if day.size and (day.min() < 0 or day.max() >= _TABLE_DAYS):
        raise ValueError("timestamp outside the generator's calendar table")
    date_s = date_table.take(pa.array(day))
    time_s = time_table.take(pa.array(shown % 86400))
    minutes_only = style == TS_MINUTES
    if minutes_only.any():
        time_s = pc.if_else(pa.array(minutes_only), pc.utf8_slice_codeunits(time_s, 0, 5), time_s)
    uniq = np.unique(offset_minutes)
    pos = np.searchsorted(uniq, offset_minutes)
    off_full = pa.array([offset_text(m) for m in uniq]).take(pa.array(pos))
    off_compact = pa.array([offset_text(m, compact=True) for m in uniq]).take(pa.array(pos))
    off = pc.if_else(pa.array(style == TS_COMPACT), off_compact, off_full)
    off = pc.if_else(pa.array(zulu), pa.scalar("Z"), off)
    if millis is not None and (style == TS_MILLIS).any():
        ms_table = pa.array([f".{i:03d}" for i in range(1000)])
        frac = pc.if_else(pa.array(style == TS_MILLIS), ms_table.take(pa.array(np.asarray(millis) % 1000)),
                          pa.scalar(""))
    else:
        frac = pa.array(np.full(len(utc_seconds), ""), pa.string()) if len(utc_seconds) else pa.array([], pa.string())
    return pc.binary_join_element_wise(date_s, "T", time_s, frac, off, "")


def format_timestamp(utc_seconds: int, offset_minutes: int, style: int = TS_OFFSET, millis: int = 0) -> str:
    """Python twin of :func:`format_timestamps` for one instant."""
    if style == TS_ZULU:
        shown = EPOCH + dt.timedelta(seconds=int(utc_seconds))
        off = "Z"
    else:
        shown = EPOCH + dt.timedelta(seconds=int(utc_seconds) + 60 * int(offset_minutes))
        off = offset_text(offset_minutes, compact=style == TS_COMPACT)
    text = shown.strftime("%Y-%m-%dT%H:%M" if style == TS_MINUTES else "%Y-%m-%dT%H:%M:%S")
    if style == TS_MILLIS:
        text += f".{millis % 1000:03d}"
    return text + off


def epoch_seconds(text: str) -> int:
    """Seconds since the epoch of an ISO timestamp with offset (for planning only)."""
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def day_number(date_text: str) -> int:
    return (dt.date.fromisoformat(date_text) - dt.date(1970, 1, 1)).days


def date_text(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()


def date_texts(days: np.ndarray) -> pa.Array:
    date_table, _ = _tables()
    return date_table.take(pa.array(np.asarray(days, dtype=np.int64) - _TABLE_START_DAY))


# --- CSV -----------------------------------------------------------------------------

def csv_quote_needed(col: pa.Array) -> pa.Array:
    """RFC 4180 minimal quoting of a column that may hold commas, quotes or line breaks."""
    needs = pc.match_substring_regex(col, r'[",\r\n]')
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(col, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, col)


def csv_field(value: str, quote_all: bool) -> str:
    if quote_all or any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(values: list[str], quote_all: bool, eol: str) -> str:
    return ",".join(csv_field(v, quote_all) for v in values) + eol


# --- file bytes --------------------------------------------------------------------------

def _buffer_slice(texts: pa.Array) -> memoryview:
    """The bytes of an Arrow string array's values, concatenated (zero-copy)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if texts.null_count:
        raise ValueError("a record text is null")
    if not len(texts) or texts.buffers()[2] is None:
        return memoryview(b"")
    offsets_type = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    offsets = np.frombuffer(texts.buffers()[1], dtype=offsets_type)
    start, end = int(offsets[texts.offset]), int(offsets[texts.offset + len(texts)])
    return memoryview(texts.buffers()[2])[start:end]


def write_segments(path: Path, segments: list, prefix: bytes = b"") -> int:
    """Write ``prefix`` then each segment (an Arrow string array, or a str); returns bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with open(path, "wb") as f:
        for seg in [prefix, *segments]:
            if isinstance(seg, bytes | str):
                data = seg.encode("utf-8") if isinstance(seg, str) else seg
            else:
                data = _buffer_slice(seg)
            f.write(data)
            size += len(data)
    return size


def json_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)
