"""Workshop JSONL files -> ``raw.workshop_events`` / ``raw.workshop_quarantine``.

Each file is split into physical lines by DuckDB (LF; the line number is the physical
line, blank lines are not records) and appended to one batch of new lines
(:func:`stage_workshops_file`); the batch is parsed with DuckDB's JSON functions, so that
a malformed line is quarantined, not fatal, and checked by one SQL CASE in the contract's
order of precedence (:func:`check_workshops_batch`); each file's statements then copy its
lines into the raw tables in its own transaction.

Why not DuckDB's CSV reader for the lines: it also breaks lines at a bare CR (legal JSON
white space inside a line) and aborts on one in strict mode.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from orchestration.ingest import files as lz
from orchestration.ingest import sqlparts as s
from orchestration.ingest.report import FileLoad
from orchestration.ingest.schema import STATUS_LOADED, STATUS_NOT_UTF8
from orchestration.ingest.sqlparts import fast_trim

# Every field the contract lists, in a fixed order (1-based positions in the extract list).
FIELDS = ("event_id", "event_type", "workshop_id", "occurred_at", "kind", "title", "held_on", "country", "city",
          "language", "participant_ref", "library_type", "years_experience", "age_group", "question", "rank",
          "option", "reported_participants")
NUMBER_FIELDS = ("years_experience", "rank", "reported_participants")
# Free text and ids: a non-string value counts as blank (contract-decisions.md).
TEXT_FIELDS = ("event_id", "workshop_id", "title", "city", "participant_ref")
TYPE_FIELDS = {
    "workshop_registered": ("kind", "title", "held_on", "country", "city", "language"),
    "participant_checked_in": ("participant_ref", "country", "library_type", "years_experience", "age_group"),
    "answer_ranked": ("question", "rank", "option"),
    "workshop_closed": ("reported_participants",),
}
COMMON_FIELDS = ("event_id", "event_type", "workshop_id", "occurred_at")
REG, CI, ANS, CLOSE = TYPE_FIELDS
JSON_NUMBER_TYPES = ("UBIGINT", "BIGINT", "DOUBLE", "HUGEINT")
INT32_MAX = 2_147_483_647

CHECK_TEMP_TABLES = ["gvw_ws_lines", "gvw_ws_checked"]


def _missing(field: str, q: str = "") -> str:
    """SQL: the field is absent, null or blank (a non-string free-text field is blank);
    ``q`` qualifies the columns (e.g. ``"q."``)."""
    if field in TEXT_FIELDS:
        return f"coalesce({q}s_{field}, '') = ''"
    t, v = f"{q}t_{field}", f"{q}s_{field}"
    return f"({t} is null or {t} = 'NULL' or ({t} = 'VARCHAR' and {v} = ''))"


def _is(event_type: str, q: str = "") -> str:
    return f"{q}s_event_type = {s.sql_str(event_type)}"


def _in(expr: str, values: tuple[str, ...]) -> str:
    return f"coalesce({expr} in {s.sql_list(values)}, false)"


def _whole(expr: str, lo: int, hi: int) -> str:
    return f"coalesce(isfinite({expr}) and {expr} = floor({expr}) and {expr} between {lo} and {hi}, false)"


_STRUCT = "{" + ", ".join(f'"{f}": "JSON"' for f in FIELDS) + "}"
# Code fields whose delivered value is almost always exactly a code: trimmed only when not.
_CODE_LISTS = {"event_type": s.EVENT_TYPES, "kind": s.WORKSHOP_KINDS, "language": s.LANGUAGES,
               "library_type": s.LIBRARY_TYPES, "age_group": s.AGE_GROUPS, "question": s.QUESTIONS}


def _unquoted(raw: str) -> str:
    """The value of a JSON text that is a string (null otherwise), untrimmed; unescaping
    only when the text holds a backslash."""
    return (f"case when not starts_with({raw}, '\"') then null when contains({raw}, chr(92)) "
            f"then json_extract_string({raw}, '$') else substr({raw}, 2, length({raw}) - 2) end")


def _type_of(raw: str) -> str:
    """json_type() names for a JSON text, from its first character (null: absent or null)."""
    return (f"case when {raw} is null then null when starts_with({raw}, '\"') then 'VARCHAR' "
            f"when {raw} in ('true', 'false') then 'BOOLEAN' when starts_with({raw}, '{{') then 'OBJECT' "
            f"when starts_with({raw}, '[') then 'ARRAY' else 'DOUBLE' end")


def _is_object_sql(line: str) -> str:
    """Whether a line is a JSON object (the first-character test skips a copy of the line)."""
    ws = "' ' || chr(9) || chr(10) || chr(13)"
    return (f"case when starts_with({line}, '{{') then json_valid({line}) "
            f"else starts_with(ltrim({line}, {ws}), '{{') and json_valid({line}) end")


def parse_lines_sql(lines: str = "gvw_ws_lines") -> str:
    """Each non-blank line of ``lines`` parsed once: whether it is a JSON object, and the
    JSON text of every contract field (``r_<field>``; null when absent or null)."""
    return f"""
        select file_key, line_number, line_text, is_object,
            case when not is_object then
                case when json_valid(line_text) then json_type(line_text) else 'INVALID' end end as shape,
            {', '.join(f"j.{f} as r_{f}" for f in FIELDS)}
        from (
            select file_key, line_number, line_text, is_object,
                case when is_object then json_transform(line_text, {s.sql_str(_STRUCT)}) end as j
            from (
                select file_key, line_number, line_text, {_is_object_sql('line_text')} as is_object
                from {lines}
            )
        )
    """


def _checked_sql(parsed: str) -> str:
    """Every line of ``parsed`` (a relation of :func:`parse_lines_sql`) with its reason
    (null: valid), the values to store, and for quarantined lines the detail."""
    # per field: JSON type (t_), trimmed string value (s_), number (n_); absent fields are
    # null and cost nothing (most fields belong to another event type)
    per_field = []
    for f in FIELDS:
        per_field.append(f"{_type_of(f'r_{f}')} as t_{f}")
        if f in _CODE_LISTS:
            per_field.append(f"case when u_{f} in {s.sql_list(_CODE_LISTS[f])} then u_{f} "
                             f"else {s.trim(f'u_{f}')} end as s_{f}")
        else:
            per_field.append(f"case when u_{f} is null then null else {fast_trim(f'u_{f}')} end as s_{f}")
        if f in NUMBER_FIELDS:
            per_field.append(f"case when {_type_of(f'r_{f}')} = 'DOUBLE' then try_cast(r_{f} as double) end as n_{f}")
    common_missing = " or ".join(_missing(f) for f in COMMON_FIELDS)
    type_missing = " or ".join(
        f"({_is(t)} and ({' or '.join(_missing(f) for f in fields)}))" for t, fields in TYPE_FIELDS.items())
    reg, ci, ans, close = (_is(t) for t in TYPE_FIELDS)
    unknown_code = (
        f"({reg} and (not {_in('s_kind', s.WORKSHOP_KINDS)} or not country_known or not {_in('s_language', s.LANGUAGES)}))"
        f" or ({ci} and (not country_known or not {_in('s_library_type', s.LIBRARY_TYPES)}"
        f" or not {_in('s_age_group', s.AGE_GROUPS)}))"
        f" or ({ans} and not {_in('s_question', s.QUESTIONS)})"
    )
    parts = s.timestamp_parts("s_occurred_at")
    return f"""
        with u as (
            -- (a CTE level of its own: the trim below reads the value three times)
            select p.*, {', '.join(f"{_unquoted(f'r_{f}')} as u_{f}" for f in FIELDS)}
            from {parsed} p
        ),
        f as (
            select file_key, line_number, line_text, is_object, shape, {', '.join(f"r_{f}" for f in FIELDS)},
                {', '.join(per_field)}
            from u
        ),
        g as (
            select f.*,
                case when regexp_full_match(s_occurred_at, {s.sql_str(s.TIMESTAMP_RE)}) then coalesce(
                    make_timestamp(epoch_us(try_cast(s_occurred_at as timestamptz))),
                    {s.utc_from_parts(parts)}) end as occurred_at,
                upper(s_country) as country,
                rc.code is not null as country_known,
                ro.option_code is not null as option_known,
                case when regexp_full_match(s_held_on, {s.sql_str(s.DATE_RE)}) then try_cast(s_held_on as date) end
                    as held_on
            from f
            left join gvw_ref_countries rc on rc.code = upper(f.s_country)
            left join gvw_ref_options ro on ro.question_code = f.s_question and ro.option_code = f.s_option
        ),
        h as (
            select g.*,
                case
                    when not is_object then 'malformed_json'
                    when {common_missing} then 'missing_required'
                    when not (t_event_type = 'VARCHAR' and {_in('s_event_type', s.EVENT_TYPES)})
                        then 'unknown_event_type'
                    when {type_missing} then 'missing_required'
                    when occurred_at is null then 'invalid_timestamp'
                    when {unknown_code} then 'unknown_code'
                    when {ci} and not {_whole('n_years_experience', 0, 70)} then 'invalid_experience'
                    when ({ans} and (not option_known or not {_whole('n_rank', 1, 5)}))
                      or ({close} and not {_whole('n_reported_participants', 0, INT32_MAX)}) then 'invalid_choice'
                    when {reg} and not coalesce(held_on between date '2017-01-01' and date '2017-12-31', false)
                        then 'invalid_date'
                end as reason
            from g
        )
        select file_key, line_number, reason,
            s_event_id as event_id, s_event_type as event_type, s_workshop_id as workshop_id, occurred_at,
            {_field((REG,), 's_kind')} as kind, {_field((REG,), 's_title')} as title,
            {_field((REG,), 'held_on')} as held_on, {_field((REG, CI), 'country')} as country,
            {_field((REG,), 's_city')} as city, {_field((REG,), 's_language')} as language,
            {_field((CI,), 's_participant_ref')} as participant_ref, {_field((CI,), 's_library_type')} as library_type,
            {_field((CI,), 'case when reason is null then cast(n_years_experience as integer) end')} as years_experience,
            {_field((CI,), 's_age_group')} as age_group, {_field((ANS,), 's_question')} as question,
            {_field((ANS,), 'case when reason is null then cast(n_rank as integer) end')} as rank,
            {_field((ANS,), 's_option')} as option_code,
            {_field((CLOSE,), 'case when reason is null then cast(n_reported_participants as integer) end')}
                as reported_participants,
            -- only quarantined lines need them (CASE evaluates them for those rows only)
            case when reason is not null then {_detail_sql()} end as detail,
            case when reason is not null then line_text end as line_text
        from h
    """


def _detail_sql() -> str:
    """Human-readable detail of a quarantined line (columns of :func:`_checked_sql`)."""
    def raw(field: str) -> str:
        # the value as written in the line (JSON text)
        return f"coalesce(r_{field}, 'absent or null')"

    def listed(parts: list[str]) -> str:
        return "concat_ws('; ', " + ", ".join(parts) + ")"

    type_missing = listed([f"case when {_is(t)} and {_missing(f)} then '{f}' end"
                           for t, fields in TYPE_FIELDS.items() for f in fields])
    common_missing = listed([f"case when {_missing(f)} then '{f}' end" for f in COMMON_FIELDS])
    reg, ci, ans = (_is(t) for t in ("workshop_registered", "participant_checked_in", "answer_ranked"))
    codes = listed([
        f"case when {reg} and not {_in('s_kind', s.WORKSHOP_KINDS)} then 'kind ' || {raw('kind')} end",
        f"case when ({reg} or {ci}) and not country_known then 'country ' || {raw('country')} "
        "|| ' not in the reference data' end",
        f"case when {reg} and not {_in('s_language', s.LANGUAGES)} then 'language ' || {raw('language')} end",
        f"case when {ci} and not {_in('s_library_type', s.LIBRARY_TYPES)} "
        f"then 'library_type ' || {raw('library_type')} end",
        f"case when {ci} and not {_in('s_age_group', s.AGE_GROUPS)} then 'age_group ' || {raw('age_group')} end",
        f"case when {ans} and not {_in('s_question', s.QUESTIONS)} then 'question ' || {raw('question')} end",
    ])
    choices = listed([
        f"case when {ans} and not option_known then 'option ' || {raw('option')} || ' is not an option of ' "
        f"|| {raw('question')} end",
        f"case when {ans} and not {_whole('n_rank', 1, 5)} then 'rank ' || {raw('rank')} "
        "|| ' is not a JSON whole number in 1..5' end",
        "case when s_event_type = 'workshop_closed' then 'reported_participants ' "
        f"|| {raw('reported_participants')} || ' is not a JSON whole number >= 0' end",
    ])
    return f"""
        case reason
            when 'malformed_json' then case when shape = 'INVALID' then 'the line is not valid JSON'
                else 'the line is a JSON ' || case shape when 'VARCHAR' then 'string'
                    when 'ARRAY' then 'array' when 'BOOLEAN' then 'boolean' when 'NULL' then 'null'
                    else 'number' end || ', not an object' end
            when 'missing_required' then 'absent, null or blank: '
                || coalesce(nullif({common_missing}, ''), {type_missing})
            when 'unknown_event_type' then 'unknown event_type ' || {raw('event_type')}
            when 'invalid_timestamp' then 'occurred_at ' || {raw('occurred_at')}
                || ' is not an ISO 8601 timestamp with offset'
            when 'unknown_code' then 'unknown code: ' || {codes}
            when 'invalid_experience' then 'years_experience ' || {raw('years_experience')}
                || ' is not a JSON whole number in 0..70'
            when 'invalid_choice' then 'invalid choice: ' || {choices}
            when 'invalid_date' then 'held_on ' || {raw('held_on')} || ' is not a YYYY-MM-DD date in 2017'
        end
    """


def _field(event_types: tuple[str, ...], expr: str) -> str:
    """A field stored only for the event types that carry it (others are ignored)."""
    cond = " or ".join(_is(t) for t in event_types)
    return f"case when {cond} then {expr} end"


def create_workshops_batch(conn: duckdb.DuckDBPyConnection) -> None:
    """The batch table: every non-blank line of new workshop files."""
    conn.execute("create or replace temp table gvw_ws_lines (file_key integer, line_number bigint, line_text varchar)")


def _append_lines(conn: duckdb.DuckDBPyConnection, key: int, data: bytes, table: str = "gvw_ws_lines") -> int:
    """Append the non-blank physical lines of a valid UTF-8 file (split on LF, one CR before
    the LF and a leading BOM removed) to ``table``, split by DuckDB; returns how many.
    Blank lines are not records (only white space: nothing to parse)."""
    conn.register("gvw_file_text", pa.table({"content": lz.text_array(data, skip_bom=True)}))
    try:
        return conn.execute(f"""
            insert into {table}
            select {key}, line_number,
                case when ends_with(line_text, chr(13)) then substr(line_text, 1, length(line_text) - 1)
                     else line_text end
            from (
                select generate_subscripts(parts, 1) as line_number, unnest(parts) as line_text
                from (select string_split(content, chr(10)) as parts from gvw_file_text)
            )
            where {fast_trim('line_text')} <> ''
        """).fetchone()[0]
    finally:
        conn.unregister("gvw_file_text")


def stage_workshops_file(conn: duckdb.DuckDBPyConnection, key: int, path: Path, data: bytes, *, sha: str,
                         file_name: str, salt: str) -> FileLoad:
    """Step 1 for one file: its lines into the batch (a file that is not UTF-8 is
    quarantined whole, line by line, outside the batch)."""
    params = {"sha": sha, "file_name": file_name, "salt": salt}
    if not lz.is_utf8(data):
        message = lz.first_utf8_error(data)
        table = f"gvw_ws_text_{key}"
        conn.execute(f"create or replace temp table {table} (file_key integer, line_number bigint, line_text varchar)")
        n = _append_lines(conn, key, lz.decoded_text(data), table)
        write = f"""
            insert into raw.workshop_quarantine
            select $sha, $file_name, line_number, 'malformed_json', $detail, {s.mask_emails('line_text')}, null, null
            from {table}
        """
        return FileLoad(n, STATUS_NOT_UTF8, message=message,
                        writes=[(write, {**params, "detail": f"file is {message}"})], temp_tables=[table])

    n = _append_lines(conn, key, data)
    events = f"""
        insert into raw.workshop_events
        select $sha, $file_name, line_number, event_id, event_type, workshop_id, occurred_at, kind, title, held_on,
            country, city, language, participant_ref, library_type, years_experience, age_group, question, rank,
            option_code, reported_participants, null
        from gvw_ws_checked where file_key = {key} and reason is null
    """
    quarantine = f"""
        insert into raw.workshop_quarantine
        with q as (
            select line_number, reason, detail, line_text, event_id, workshop_id
            from gvw_ws_checked where file_key = {key} and reason is not null
        )
        select $sha, $file_name, line_number, reason, {s.mask_emails('detail')}, {s.mask_emails('line_text')},
            nullif({s.mask_emails('event_id')}, ''), nullif({s.mask_emails('workshop_id')}, '')
        from q
    """
    return FileLoad(n, STATUS_LOADED, writes=[(events, params), (quarantine, params)])


def discard_file(conn: duckdb.DuckDBPyConnection, key: int) -> None:
    """Drop a staged file's lines from the batch (it changed while being read)."""
    conn.execute(f"delete from gvw_ws_lines where file_key = {int(key)}")


def check_workshops_batch(conn: duckdb.DuckDBPyConnection) -> None:
    """Step 2: ``gvw_ws_checked`` = every batch line with its reason (null: valid), the
    values ``raw.workshop_events`` stores and, for quarantined lines, the detail and the line
    as delivered. The lines are parsed within the same query (a table of the parsed lines
    would cost memory, not time)."""
    conn.execute(f"create or replace temp table gvw_ws_checked as {_checked_sql(f'({parse_lines_sql()})')}")
    # the quarantined lines' text is in gvw_ws_checked: the lines go before the writes
    conn.execute("drop table if exists gvw_ws_lines")
