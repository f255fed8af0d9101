"""Shared SQL pieces: code lists, trimming, timestamps, e-mail masking, reference data.

Only constants of our own code are formatted into SQL here (code lists, regular
expressions, identifiers); data values always travel as bound parameters.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

LANGUAGES = ("ar", "zh", "en", "fr", "de", "ru", "es")
LIBRARY_TYPES = ("national", "academic", "public", "school", "special", "other")
AGE_GROUPS = ("under_25", "25_34", "35_44", "45_54", "55_64", "65_plus")
WORKSHOP_KINDS = ("kickoff", "regional", "professional_unit", "national", "self_facilitated")
QUESTIONS = ("Q1", "Q2", "Q3", "Q4", "Q5", "Q6")
EVENT_TYPES = ("workshop_registered", "participant_checked_in", "answer_ranked", "workshop_closed")

VOTING_WINDOW = ("2017-08-21 00:00:00", "2017-10-01 00:00:00")  # UTC, end excluded

# Python's str.strip() white space: values are "trimmed of surrounding white space"
# (contract-decisions.md), and the source systems' tools are not only ASCII. A regular
# expression: DuckDB's trim() with a long character set is ten times slower.
_WHITESPACE_CLASS = (r"[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
                     r"\x{202f}\x{205f}\x{3000}]")
_TRIM_RE = f"^{_WHITESPACE_CLASS}+|{_WHITESPACE_CLASS}+$"

# ISO 8601 with an offset (contract-decisions.md): date, 'T', HH:MM[:SS[.f…]], then 'Z',
# ±HH:MM or ±HHMM. The calendar check is DuckDB's cast of the date and time parts.
_TIMESTAMP_CORE = (
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T((?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?)"
    r"(?:Z|([+-])([01][0-9]|2[0-3]):?([0-5][0-9]))"
)
TIMESTAMP_RE = f"^{_TIMESTAMP_CORE}$"
# the same, with white space around (checked before trimming, which is costlier)
TIMESTAMP_PADDED_RE = f"^{_WHITESPACE_CLASS}*{_TIMESTAMP_CORE}{_WHITESPACE_CLASS}*$"
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Anything that looks like an e-mail address: a run of non-separators around an "@".
EMAIL_RE = r"""[^\s@,;:"'<>()\[\]{}]+@[^\s@,;:"'<>()\[\]{}]+"""
EMAIL_PREFIX_CHARS = 12


def execute(conn: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> duckdb.DuckDBPyConnection:
    """Run ``sql`` with the named parameters it uses (DuckDB rejects unused ones)."""
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql))
    return conn.execute(sql, {k: v for k, v in (params or {}).items() if k in used})


def sql_str(value: str) -> str:
    """A SQL string literal of one of our own constants."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def trim(expr: str) -> str:
    """``expr`` trimmed of surrounding white space (null stays null)."""
    return f"regexp_replace({expr}, {sql_str(_TRIM_RE)}, '', 'g')"


def fast_trim(expr: str) -> str:
    """``expr`` trimmed like :func:`trim`; the regular expression runs only when the first
    or last character is not printable ASCII (almost never): most values arrive clean."""
    return (f"case when ascii({expr}) between 33 and 126 and ascii(right({expr}, 1)) between 33 and 126 "
            f"then {expr} else {trim(expr)} end")


def timestamp_parts(expr: str) -> str:
    """Struct of the parts of an ISO timestamp text (all '' when it does not match)."""
    return f"regexp_extract({expr}, {sql_str(TIMESTAMP_RE)}, ['d', 'tm', 'sign', 'oh', 'om'])"


def utc_from_parts(parts: str) -> str:
    """The UTC instant (timestamp without zone) of a :func:`timestamp_parts` struct, or
    null when the text is not a valid timestamp with offset."""
    return (
        f"case when {parts}.d <> '' then "
        f"try_cast({parts}.d || ' ' || {parts}.tm as timestamp) - to_minutes("
        f"(case when {parts}.sign = '-' then -1 else 1 end) * "
        f"(coalesce(try_cast(nullif({parts}.oh, '') as integer), 0) * 60"
        f" + coalesce(try_cast(nullif({parts}.om, '') as integer), 0))) end"
    )


def email_token(email_expr: str, salt_param: str = "$salt") -> str:
    """``<email:HASHPREFIX>``: what an e-mail value is replaced by in quarantine texts.
    The prefix is the start of the respondent key (salted SHA-256 of the lower-cased
    trimmed address), so a quarantined record can be linked to an accepted one."""
    return (f"'<email:' || left(sha256({salt_param} || lower({trim(email_expr)})), {EMAIL_PREFIX_CHARS}) || '>'")


def respondent_key(email_expr: str, salt_param: str = "$salt") -> str:
    """Salted SHA-256 hex of the lower-cased trimmed e-mail; null when blank."""
    trimmed = fast_trim(email_expr)
    return f"case when coalesce({trimmed}, '') <> '' then sha256({salt_param} || lower({trimmed})) end"


def mask_emails(expr: str, salt_param: str = "$salt") -> str:
    """``expr`` with every e-mail-like substring replaced by its ``<email:…>`` token."""
    return (
        f"list_reduce(regexp_extract_all({expr}, {sql_str(EMAIL_RE)}), "
        f"(acc, m) -> replace(acc, m, '<email:' || left(sha256({salt_param} || lower(m)), "
        f"{EMAIL_PREFIX_CHARS}) || '>'), {expr})"
    )


class ReferenceDataError(ValueError):
    """The warehouse's own reference data (dbt seeds) is missing or unusable."""


def load_reference(conn: duckdb.DuckDBPyConnection, countries_csv: Path, options_csv: Path) -> None:
    """Load the country and option codes into temp tables ``gvw_ref_countries(code)`` and
    ``gvw_ref_options(option_code, question_code)`` for set-based checks."""
    for path in (countries_csv, options_csv):
        if not Path(path).is_file():
            raise ReferenceDataError(f"reference file not found: {path}")
    conn.execute(
        f"""create or replace temp table gvw_ref_countries as
        select distinct upper({trim('country_code')}) as code
        from read_csv($path, header = true, all_varchar = true, delim = ',', quote = '"')
        where coalesce({trim('country_code')}, '') <> ''""",
        {"path": str(countries_csv)},
    )
    conn.execute(
        f"""create or replace temp table gvw_ref_options as
        select distinct {trim('option_code')} as option_code, {trim('question_code')} as question_code
        from read_csv($path, header = true, all_varchar = true, delim = ',', quote = '"')
        where coalesce({trim('option_code')}, '') <> ''""",
        {"path": str(options_csv)},
    )
    n_countries = conn.execute("select count(*) from gvw_ref_countries").fetchone()[0]
    n_options = conn.execute("select count(*) from gvw_ref_options").fetchone()[0]
    if n_countries == 0 or n_options == 0:
        raise ReferenceDataError(f"reference data is empty: {n_countries} countries in {countries_csv}, "
                              f"{n_options} options in {options_csv}")
    # one list of option codes per question, for list_has_all checks
    conn.execute(
        """create or replace temp table gvw_ref_question_options as
        select question_code, list(option_code order by option_code) as codes
        from gvw_ref_options group by question_code"""
    )


def codes_literal(codes: list[str]) -> str:
    """A SQL list literal of reference codes (from the project's own seed files, quoted).

    A literal rather than a scalar subquery: a subquery would be joined to every row
    and carry the list through the pipeline, which is several times slower."""
    return "[" + ", ".join(sql_str(c) for c in codes) + "]::varchar[]"
