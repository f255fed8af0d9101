"""Votes CSV files -> ``raw.votes`` / ``raw.vote_quarantine``.

Three steps, driven by :mod:`orchestration.ingest.core`, over a batch of files:

1. :func:`stage_votes_file`, per file: DuckDB's CSV reader parses it alone (RFC 4180,
   every column VARCHAR), keeping the rows it cannot parse in a rejects table; the
   records are numbered and the parsed ones join the batch (columns matched by header
   name).
2. :func:`check_votes_batch`, once per batch: the record rules as one SQL CASE in the
   contract's order of precedence.
3. the load's ``writes``, per file: the statements that copy its records into the raw
   tables, run in the file's transaction with its ledger row.

Validating a batch of files at once costs one query plan per batch instead of one per
file (the rule query is large: setting it up costs as much as checking 20,000 records).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.ingest import files as lz
from orchestration.ingest import sqlparts as s
from orchestration.ingest.report import FileLoad
from orchestration.ingest.sqlparts import execute
from orchestration.ingest.schema import (
    STATUS_LOADED,
    STATUS_MISSING_COLUMN,
    STATUS_NOT_UTF8,
    STATUS_UNREADABLE,
)

CORE_COLUMNS = ("response_id", "submitted_at", "language", "country", "library_type",
                "years_experience", "age_group")
CHOICE_COLUMNS = ("q1", "q2", "q3", "q4", "q5", "q6")
OPTIONAL_COLUMNS = ("respondent_email", "is_test")
REQUIRED_COLUMNS = (*CORE_COLUMNS, *CHOICE_COLUMNS)
CONTRACT_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)

_REJECTS = "gvw_csv_rejects"
# up to this many rejected rows in a file, parsed rows are numbered by an inline expression
_INLINE_GAPS = 64
_REJECT_SCANS = "gvw_csv_reject_scans"


class RecordNumberingError(RuntimeError):
    """Parsed and rejected rows of a file could not be numbered consistently (a bug, or a
    DuckDB behaviour we do not know): the file's transaction is rolled back."""


# --- header -------------------------------------------------------------------------------

def match_header(header: list[str]) -> tuple[dict[str, int], list[str], list[str]]:
    """Map contract columns to 0-based header positions (case-insensitive, trimmed).

    Returns (positions, extra column names as delivered, missing required columns). A
    repeated contract column keeps its first position; the repeat is reported as extra.
    """
    positions: dict[str, int] = {}
    extras: list[str] = []
    for i, raw_name in enumerate(header):
        name = raw_name.strip().lower()
        if name in CONTRACT_COLUMNS and name not in positions:
            positions[name] = i
        else:
            extras.append(raw_name.strip() or f"(blank column {i + 1})")
    missing = [c for c in REQUIRED_COLUMNS if c not in positions]
    return positions, extras, missing


# --- reading ------------------------------------------------------------------------------

def _read_csv_sql(n_columns: int, strict: bool, target: str, prefix: str = "c") -> str:
    # identifiers, column names and options are ours; the path is a parameter
    columns = "{" + ", ".join(f"'{prefix}{i + 1}': 'VARCHAR'" for i in range(n_columns)) + "}"
    return f"""
        create or replace temp table {target} as
        select * from read_csv($path, columns = {columns}, header = true, auto_detect = false,
            delim = ',', quote = '"', escape = '"', null_padding = false,
            strict_mode = {'true' if strict else 'false'},
            store_rejects = true, rejects_table = '{_REJECTS}', rejects_scan = '{_REJECT_SCANS}')
    """


def _drop_rejects(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"drop table if exists {_REJECTS}; drop table if exists {_REJECT_SCANS}")


def _rejected_lines(conn: duckdb.DuckDBPyConnection) -> str:
    """SQL of this scan's rejected rows, one per CSV record (DuckDB may log several errors
    for one record). ``line`` is DuckDB's row counter: header = 1, each record one more."""
    return f"""
        select line, min(csv_line) as csv_line,
            string_agg(distinct lower(error_type::varchar), ', ') as errors,
            min(error_message) as error_message
        from {_REJECTS}
        where scan_id = (select max(scan_id) from {_REJECT_SCANS})
        group by line
    """


def _scan(conn: duckdb.DuckDBPyConnection, path: Path, n_columns: int, strict: bool, t: dict[str, str]) -> None:
    """Parse the file into ``t['stage']`` (c1..cN) and its rejected records into ``t['rej']``."""
    _drop_rejects(conn)
    conn.execute(_read_csv_sql(n_columns, strict, t["stage"]), {"path": str(path)})
    conn.execute(f"create or replace temp table {t['rej']} as {_rejected_lines(conn)}")
    _drop_rejects(conn)


def _record_lines_by_probe(conn: duckdb.DuckDBPyConnection, path: Path, n_columns: int, strict: bool,
                           lines: str) -> None:
    """DuckDB's row counter value of every CSV record of the file, into table ``lines``.

    Needed only when a file has both rejected rows and empty lines: DuckDB counts empty
    lines in its row counter but returns no row for them, so their places are unknown.
    Two extra scans declare one and two columns more than the header: no record can
    have both N+1 and N+2 fields, so every record is rejected (hence numbered) by at least
    one of them, with the same record boundaries as the main scan.
    """
    conn.execute(f"create or replace temp table {lines} (line bigint)")
    for extra in (1, 2):
        _drop_rejects(conn)
        conn.execute(_read_csv_sql(n_columns + extra, strict, "gvw_vote_probe", prefix="p"), {"path": str(path)})
        conn.execute(f"insert into {lines} select line from ({_rejected_lines(conn)})")
    _drop_rejects(conn)
    conn.execute("drop table if exists gvw_vote_probe")
    conn.execute(f"create or replace temp table {lines} as select distinct line from {lines}")


@dataclass(frozen=True)
class _Numbering:
    """Record numbers of a file's parsed rows, by parsed row (the stage's 0-based ``rowid``,
    which follows the file): an expression for files with few rejected rows, a lookup table
    for the others. Applied only where rows are written, never to the whole batch."""

    gaps: tuple[int, ...] = ()
    table: str | None = None   # (parsed_row, record_number)

    def number(self, row: str) -> str:
        """SQL of the record number of parsed row ``row`` (with :meth:`join` in the FROM)."""
        if self.table:
            return "n.record_number"
        # parsed row k (0-based) is record k + 1 + the rejected rows before it: those are the
        # j with a_j < k + 1 (a_j = parsed rows before rejected row j); integers we computed
        return " + ".join([f"{row} + 1", *(f"({row} + 1 > {a})::bigint" for a in self.gaps)])

    def join(self, row: str) -> str:
        return f"join {self.table} n on n.parsed_row = {row}" if self.table else ""


def _number_records(conn: duckdb.DuckDBPyConnection, path: Path, data: bytes, n_columns: int,
                    strict: bool, t: dict[str, str]) -> tuple[int, _Numbering]:
    """Give every parsed and rejected record its 1-based data record number.

    Adds ``record_number`` to the rejects table and returns (number of records, numbering of
    the parsed rows). Parsed rows keep the file's order (DuckDB preserves insertion order,
    so the stage's rowid follows the file).
    """
    n_parsed = conn.execute(f"select count(*) from {t['stage']}").fetchone()[0]
    n_rejected = conn.execute(f"select count(*) from {t['rej']}").fetchone()[0]
    total = n_parsed + n_rejected
    if n_rejected == 0:
        conn.execute(f"alter table {t['rej']} add column record_number bigint")
        return total, _Numbering()
    if not lz.has_blank_lines(data):
        # DuckDB's line = record number + 1 (the header is line 1)
        conn.execute(f"create or replace temp table {t['rej']} as select line - 1 as record_number, * "
                     f"from {t['rej']}")
    else:
        _record_lines_by_probe(conn, path, n_columns, strict, t["lines"])
        found, missing = conn.execute(
            f"select (select count(*) from {t['lines']}), "
            f"(select count(*) from {t['rej']} where line not in (select line from {t['lines']}))"
        ).fetchone()
        if found != total or missing:
            raise RecordNumberingError(
                f"{path.name}: {found} records located, {total} expected ({missing} rejected rows unplaced)")
        conn.execute(f"""
            create or replace temp table {t['rej']} as
            select n.record_number, r.* from {t['rej']} r
            join (select line, row_number() over (order by line) as record_number from {t['lines']}) n
            using (line)""")
    # distinct rejected numbers within 1..total: the parsed rows then take exactly the others
    distinct, lo, hi = conn.execute(
        f"select count(distinct record_number), min(record_number), max(record_number) from {t['rej']}").fetchone()
    if not (distinct == n_rejected and lo >= 1 and hi <= total):
        raise RecordNumberingError(
            f"{path.name}: rejected rows numbered {lo}..{hi} ({distinct} distinct of {n_rejected}), "
            f"outside 1..{total}")
    # parsed row k (in file order) takes the k-th record number not used by a rejected row
    gaps = tuple(int(a) for (a,) in conn.execute(
        f"select record_number - row_number() over (order by record_number) from {t['rej']} order by 1").fetchall())
    if len(gaps) <= _INLINE_GAPS:
        return total, _Numbering(gaps=gaps)
    # many rejected rows: the free numbers in order, the k-th one for parsed row k
    conn.execute(f"""
        create or replace temp table {t['numbers']} as
        select row_number() over (order by record_number) - 1 as parsed_row, record_number
        from range(1, $total + 1) r(record_number)
        where record_number not in (select record_number from {t['rej']})""", {"total": total})
    return total, _Numbering(table=t["numbers"])


# --- quarantining whole files -------------------------------------------------------------

def lines_to_temp(conn: duckdb.DuckDBPyConnection, lines, table: str) -> None:
    """Materialise an Arrow table of physical lines as a temp table (ours to name)."""
    conn.register("gvw_lines_arrow", lines)
    try:
        conn.execute(f"create or replace temp table {table} as select * from gvw_lines_arrow")
    finally:
        conn.unregister("gvw_lines_arrow")


def _quarantine_lines(conn: duckdb.DuckDBPyConnection, lines, *, key: int, params: dict, detail: str,
                      status: str, extras: list[str] | None = None) -> FileLoad:
    """Every non-blank physical line after the header as one ``malformed_row`` record."""
    table = f"gvw_vote_text_{key}"
    lines_to_temp(conn, lines, table)
    n = conn.execute(f"select count(*) from {table} where line_number > 1 "
                     f"and {s.trim('line_text')} <> ''").fetchone()[0]
    write = f"""
        insert into raw.vote_quarantine
        select $sha, $file_name, row_number() over (order by line_number), 'malformed_row', $detail,
               {s.mask_emails('line_text')}, null
        from {table}
        where line_number > 1 and {s.trim('line_text')} <> ''
    """
    return FileLoad(n, status, extras or [], detail, writes=[(write, {**params, "detail": detail})],
                    temp_tables=[table])


# --- staging ------------------------------------------------------------------------------

def _quoted(expr: str) -> str:
    return "'''' || " + expr + " || ''''"


def _raw(positions: dict[str, int], name: str) -> str:
    """SQL of a contract column's delivered value ('' when blank or the column is absent)."""
    if name not in positions:
        return "''"
    return f"coalesce(c{positions[name] + 1}, '')"


BATCH_COLUMNS = CONTRACT_COLUMNS


class VotesBatch:
    """A batch's parsed votes records: one SELECT per staged file (columns matched by name,
    ``parsed_row`` = the stage's rowid), read by the rule query as one UNION ALL view
    ``gvw_vote_batch``: the records are not copied (a copy costs as much as it saves the
    rule query, and memory), and record numbers are attached only where rows are written."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self.parts: dict[int, str] = {}
        self.stages: dict[int, tuple[str, str]] = {}   # key -> (stage table, SQL of a row's text)

    def add(self, key: int, positions: dict[str, int], stage: str, record_text: str) -> None:
        self.parts[key] = (f"select {int(key)} as file_key, rowid as parsed_row, "
                           + ", ".join(f"{_raw(positions, c)} as {c}" for c in BATCH_COLUMNS) + f" from {stage}")
        self.stages[key] = (stage, record_text)

    def discard(self, key: int) -> None:
        self.parts.pop(key, None)
        self.stages.pop(key, None)

    def keep_quarantined_text(self, salt: str) -> None:
        """``gvw_vote_text``: the text of every quarantined parsed record (the stages are
        dropped then: they would hold the whole batch in memory through the writes)."""
        self.conn.execute("create or replace temp table gvw_vote_text "
                          "(file_key integer, parsed_row bigint, record_text varchar)")
        for key, (stage, record_text) in self.stages.items():
            execute(self.conn, f"""
                insert into gvw_vote_text
                select {int(key)}, r.rowid, {record_text}
                from {stage} r semi join gvw_vote_checked q
                    on q.file_key = {int(key)} and q.parsed_row = r.rowid and q.reason is not null""",
                    {"salt": salt})
            self.conn.execute(f"drop table {stage}")

    def create_view(self) -> None:
        empty = ("select null::integer as file_key, null::bigint as parsed_row, "
                 + ", ".join(f"null::varchar as {c}" for c in BATCH_COLUMNS) + " where false")
        self.conn.execute("create or replace temp view gvw_vote_batch as "
                          + (" union all ".join(self.parts.values()) or empty))


def _temp_names(key: int) -> dict[str, str]:
    return {name: f"gvw_vote_{name}_{key}" for name in ("stage", "rej", "numbers", "lines")}


def stage_votes_file(conn: duckdb.DuckDBPyConnection, batch: VotesBatch, key: int, path: Path, data: bytes, *,
                     sha: str, file_name: str, salt: str) -> FileLoad:
    """Step 1 for one file (its bytes already read and hashed): parse it, number its
    records, append the parsed ones to the batch. Whole-file cases (not UTF-8, unreadable,
    a required column missing) get their writes at once and nothing in the batch."""
    params = {"sha": sha, "file_name": file_name, "salt": salt}
    if not lz.is_utf8(data):
        message = lz.first_utf8_error(data)
        return _quarantine_lines(conn, lz.decoded_lines(data), key=key, params=params, detail=f"file is {message}",
                                 status=STATUS_NOT_UTF8)

    header = lz.csv_header(data)
    positions, extras, missing = match_header(header)
    n_columns = len(header)
    if n_columns == 0:
        return FileLoad(0, STATUS_MISSING_COLUMN, message="empty file: no header")

    t = _temp_names(key)
    notes: list[str] = []
    if extras:
        notes.append(f"extra column(s) ignored: {', '.join(extras)}")
    try:
        _scan(conn, path, n_columns, True, t)
        strict = True
    except duckdb.InvalidInputException as first:
        # e.g. mixed CRLF/LF line endings or a bare CR outside quotes: DuckDB's strict
        # reader stops; the lenient one treats any CR or LF as a line break
        try:
            _scan(conn, path, n_columns, False, t)
            strict = False
            notes.append(f"read in lenient CSV mode ({str(first).splitlines()[0]})")
        except duckdb.InvalidInputException as second:
            message = f"CSV reader failed: {str(second).splitlines()[0]}"
            return _quarantine_lines(conn, lz.split_lines(data), key=key, params=params, detail=message,
                                     status=STATUS_UNREADABLE, extras=extras)

    total, numbering = _number_records(conn, path, data, n_columns, strict, t)
    parsed = f"(select rowid as parsed_row, * from {t['stage']})"
    temp_tables = list(t.values())
    record_text = _record_text_sql(n_columns, positions.get("respondent_email"))
    reject_detail = "'malformed row (' || errors || '): ' || coalesce(error_message, '')"
    reject_text = "trim(coalesce(csv_line, ''), chr(13) || chr(10))"

    if missing:
        detail = f"the file lacks required column(s): {', '.join(missing)}"
        writes = [(f"""
            insert into raw.vote_quarantine
            with q as (
                select {numbering.number('r.parsed_row')} as record_number, {record_text} as record_text,
                    {_raw(positions, 'response_id')} as response_id
                from {parsed} r {numbering.join('r.parsed_row')}
                union all
                select record_number, {reject_text}, null from {t['rej']}
            )
            select $sha, $file_name, record_number, 'missing_column', $detail, {s.mask_emails('record_text')},
                nullif({s.mask_emails(s.trim('response_id'))}, '')
            from q
        """, {**params, "detail": detail})]
        return FileLoad(total, STATUS_MISSING_COLUMN, extras, "; ".join([detail, *notes]), writes=writes,
                        temp_tables=temp_tables)

    batch.add(key, positions, t["stage"], record_text)
    # step 3 copies the checked records of this file; the quarantined parsed ones get
    # their text from gvw_vote_text (taken from the stage after the check), the rejected
    # ones from DuckDB's rejects table
    writes = [
        (f"""
            insert into raw.votes
            select $sha, $file_name, {numbering.number('c.parsed_row')}, response_id, submitted_at, language, country,
                library_type, years_experience, age_group, respondent_key, {', '.join(f'c.{q}' for q in CHOICE_COLUMNS)},
                null
            from gvw_vote_checked c {numbering.join('c.parsed_row')}
            where c.file_key = {key} and c.reason is null
        """, params),
        (f"""
            insert into raw.vote_quarantine
            with q as (
                select {numbering.number('q.parsed_row')} as record_number, q.reason, q.detail, t.record_text,
                    q.response_id
                from gvw_vote_checked q join gvw_vote_text t on t.file_key = q.file_key and t.parsed_row = q.parsed_row
                    {numbering.join('q.parsed_row')}
                where q.file_key = {key} and q.reason is not null
                union all
                select record_number, 'malformed_row', {reject_detail}, {reject_text}, null from {t['rej']}
            )
            select $sha, $file_name, record_number, reason, {s.mask_emails('detail')}, {s.mask_emails('record_text')},
                nullif({s.mask_emails('response_id')}, '')
            from q
        """, params),
    ]
    return FileLoad(total, STATUS_LOADED, extras, "; ".join(notes), writes=writes, temp_tables=temp_tables)


# --- the record rules, over the batch -------------------------------------------------------

def question_codes(conn: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Option codes of each question, from the reference temp table."""
    return {q: list(codes) for q, codes in conn.execute(
        "select question_code, codes from gvw_ref_question_options").fetchall()}


def _choice_items(col: str) -> str:
    """The option codes of a q value: split on ';', each trimmed, empty items dropped."""
    return f"list_filter(list_transform(string_split({col}, ';'), x -> {s.trim('x')}), x -> x <> '')"


# Columns with few distinct values: each is checked once per distinct value, in a small
# dictionary ``gvw_vote_d_<column>(raw, text, norm, ok)`` joined to the records (a hash
# probe costs a fraction of trimming and checking every value). One table per column,
# not one for all: the join order optimizer misjudges joins on a shared table's subsets
# and builds its hash tables on the records.
DICTIONARY_COLUMNS = ("language", "country", "library_type", "years_experience", "age_group", "is_test",
                      *CHOICE_COLUMNS)


def _dictionary_sql(column: str, codes: dict[str, list[str]]) -> tuple[str, str, str]:
    """(text, norm, ok) of a distinct raw value ``raw``: the trimmed text, the value to
    store, whether the column's rule holds."""
    text = s.trim("raw")
    if column == "language":
        return text, text, f"{text} in {s.sql_list(s.LANGUAGES)}"
    if column == "library_type":
        return text, text, f"{text} in {s.sql_list(s.LIBRARY_TYPES)}"
    if column == "age_group":
        return text, text, f"{text} in {s.sql_list(s.AGE_GROUPS)}"
    if column == "country":
        return text, f"upper({text})", f"upper({text}) in (select code from gvw_ref_countries)"
    if column == "is_test":
        return text, f"lower({text})", f"lower({text}) in ('true', 'false', '')"
    if column == "years_experience":
        # digits only, 0..70 (a long run of digits is simply too large)
        return (text, f"case when regexp_full_match({text}, '[0-9]{{1,9}}') then cast({text} as integer) end",
                f"coalesce(regexp_full_match({text}, '[0-9]+') and try_cast({text} as hugeint) <= 70, false)")
    items = _choice_items("raw")
    return (text, f"array_to_string({items}, ';')",
            f"list_has_all({s.codes_literal(codes.get(column.upper(), []))}, {items}) "
            f"and len(list_distinct({items})) = len({items}) and len({items}) <= 5")


def _rules_sql() -> str:
    """SELECT of every batch record with its normalised values and ``reason``: the record
    rules as one CASE, in the contract's order of precedence."""
    d = {c: f"gvw_vote_d_{c}" for c in DICTIONARY_COLUMNS}
    parts = s.timestamp_parts(s.trim("submitted_at_raw"))
    joins = " ".join(f"join {d[c]} on {d[c]}.raw = v.{c}" for c in DICTIONARY_COLUMNS)
    return f"""
        with v as (
            select file_key, parsed_row, {s.trim('response_id')} as response_id,
                submitted_at as submitted_at_raw, respondent_email as email,
                {', '.join(DICTIONARY_COLUMNS)}
            from gvw_vote_batch
        ),
        p as (
            select v.file_key, v.parsed_row, v.response_id, v.submitted_at_raw, v.email,
                -- the format is the contract's (white space around allowed); DuckDB's cast does
                -- the calendar and the offset, except HH:MM with a +HHMM offset (slow parse)
                case when regexp_full_match(submitted_at_raw, {s.sql_str(s.TIMESTAMP_PADDED_RE)}) then coalesce(
                    make_timestamp(epoch_us(try_cast(submitted_at_raw as timestamptz))),
                    {s.utc_from_parts(parts)}) end as submitted_at,
                {d['language']}.norm as language, {d['language']}.ok as language_ok,
                {d['country']}.text as country_text, {d['country']}.norm as country,
                {d['country']}.ok as country_known,
                {d['library_type']}.norm as library_type, {d['library_type']}.ok as library_type_ok,
                {d['years_experience']}.text as years_text, {d['years_experience']}.norm as years_value,
                {d['years_experience']}.ok as years_ok,
                {d['age_group']}.norm as age_group, {d['age_group']}.ok as age_group_ok,
                {d['is_test']}.norm as is_test, {d['is_test']}.ok as is_test_ok,
                {', '.join(f"v.{q} as {q}_raw, {d[q]}.norm as {q}, {d[q]}.ok as {q}_ok" for q in CHOICE_COLUMNS)}
            from v {joins}
        )
        select p.*,
            case
                when response_id = '' or language = '' or country_text = '' or library_type = ''
                  or years_text = '' or age_group = ''
                  or (submitted_at is null and {s.trim('submitted_at_raw')} = '') then 'missing_required'
                when is_test = 'true' then 'test_submission'
                when submitted_at is null then 'invalid_timestamp'
                when submitted_at < timestamp '{s.VOTING_WINDOW[0]}'
                  or submitted_at >= timestamp '{s.VOTING_WINDOW[1]}' then 'outside_voting_window'
                when not (language_ok and country_known and library_type_ok and age_group_ok and is_test_ok)
                    then 'unknown_code'
                when not years_ok then 'invalid_experience'
                when not ({' and '.join(f'{q}_ok' for q in CHOICE_COLUMNS)}) then 'invalid_choice'
            end as reason
        from p
    """


def check_votes_batch(conn: duckdb.DuckDBPyConnection, batch: VotesBatch, salt: str) -> None:
    """Step 2: ``gvw_vote_checked`` = every batch record with its reason (null: valid), the
    values ``raw.votes`` stores, and for quarantined records (only: CASE evaluates the
    branch for those rows alone) the detail."""
    batch.create_view()
    codes = question_codes(conn)
    for column in DICTIONARY_COLUMNS:
        text, norm, ok = _dictionary_sql(column, codes)
        conn.execute(f"""
            create or replace temp table gvw_vote_d_{column} as
            select raw, {text} as text, {norm} as norm, {ok} as ok
            from (select distinct {column} as raw from gvw_vote_batch)
        """)
    execute(conn, f"""
        create or replace temp table gvw_vote_checked as
        select file_key, parsed_row, reason, response_id, submitted_at, language, country, library_type,
            case when reason is null then years_value end as years_experience, age_group,
            case when reason is null then {s.respondent_key('email')} end as respondent_key,
            {', '.join(CHOICE_COLUMNS)},
            case when reason is not null then {_detail_sql(codes)} end as detail
        from ({_rules_sql()})
    """, {"salt": salt})
    batch.keep_quarantined_text(salt)


CHECK_TEMP_TABLES = ["gvw_vote_checked", "gvw_vote_text", *(f"gvw_vote_d_{c}" for c in DICTIONARY_COLUMNS)]


def _detail_sql(codes: dict[str, list[str]]) -> str:
    """Human-readable detail of a quarantined record (columns of :func:`_rules_sql`)."""
    def listed(parts: list[str]) -> str:
        return "concat_ws('; ', " + ", ".join(parts) + ")"

    def items(q: str) -> str:
        return _choice_items(f"{q}_raw")

    blanks = listed([f"case when {c} = '' then '{name}' end" for c, name in (
        ("response_id", "response_id"), (f"{s.trim('submitted_at_raw')}", "submitted_at"), ("language", "language"),
        ("country_text", "country"), ("library_type", "library_type"), ("years_text", "years_experience"),
        ("age_group", "age_group"))])
    unknown = listed([
        f"case when not language_ok then 'language ' || {_quoted('language')} end",
        f"case when not country_known then 'country ' || {_quoted('country_text')} || ' not in the reference data' end",
        f"case when not library_type_ok then 'library_type ' || {_quoted('library_type')} end",
        f"case when not age_group_ok then 'age_group ' || {_quoted('age_group')} end",
        f"case when not is_test_ok then 'is_test ' || {_quoted('is_test')} end",
    ])
    choices = listed([
        f"""case when {q}_ok then null
            when not list_has_all({s.codes_literal(codes.get(q.upper(), []))}, {items(q)})
                then '{q} ' || {_quoted(f"{q}_raw")} || ': a code not of {q.upper()}'
            when len(list_distinct({items(q)})) < len({items(q)})
                then '{q} ' || {_quoted(f"{q}_raw")} || ': a repeated code'
            else '{q} ' || {_quoted(f"{q}_raw")} || ': more than five codes' end"""
        for q in CHOICE_COLUMNS])
    return f"""
        case reason
            when 'missing_required' then 'blank required value: ' || {blanks}
            when 'test_submission' then 'is_test is true (a platform test)'
            when 'invalid_timestamp' then 'submitted_at ' || {_quoted(s.trim('submitted_at_raw'))}
                || ' is not an ISO 8601 timestamp with offset'
            when 'outside_voting_window' then 'submitted_at ' || {_quoted(s.trim('submitted_at_raw'))} || ' is '
                || strftime(submitted_at, '%Y-%m-%dT%H:%M:%SZ') || ', outside [2017-08-21T00:00:00Z, 2017-10-01T00:00:00Z)'
            when 'unknown_code' then 'unknown code: ' || {unknown}
            when 'invalid_experience' then 'years_experience ' || {_quoted('years_text')}
                || ' is not a whole number in 0..70'
            when 'invalid_choice' then 'invalid choice: ' || {choices}
        end
    """


def _record_text_sql(n_columns: int, email_position: int | None) -> str:
    """The parsed record re-written as a CSV line (minimal RFC 4180 quoting), with the
    e-mail field replaced by its token; the caller masks any other e-mail-like text."""
    fields = []
    for i in range(n_columns):
        col = f"coalesce(c{i + 1}, '')"
        if i == email_position:
            col = f"case when {s.trim(col)} = '' then {col} else {s.email_token(col)} end"
        fields.append(f"case when regexp_matches({col}, '[\",\\r\\n]') then '\"' || replace({col}, '\"', '\"\"') || '\"' else {col} end")
    return " || ',' || ".join(fields) if fields else "''"
