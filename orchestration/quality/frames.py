"""The frames the GX suites validate, computed in DuckDB through a read-only connection.

GX's SQL datasource does not work against DuckDB, so every suite validates a pandas frame.
Pulling a multi-million-row table into pandas and letting GX scan it row by row costs tens
of seconds per table at scale 100, so large tables are validated through *profile frames*
that are complete yet small:

* a **domain** column holds each distinct non-null value of a table column once (a rule on
  values - a code set, a range, a pattern - holds for every record iff it holds for every
  distinct value);
* a **measure** column holds one value computed over all records in SQL (duplicate
  composite keys, missing required values, cross-table reconciliations, min/max instants),
  and its expectation says what that number must be.

The parts are glued side by side with DuckDB's ``positional join`` (shorter columns are
padded with nulls, which GX's column-value expectations ignore). Small tables (the
ledger, the workshops, the theme rankings, the reports) are validated row by row, with a
few derived columns where a rule spans rows (rank contiguity, reconciliations).

A profile costs one scan of its table for every domain and plain measure, plus one
grouping per duplicate key; nothing of the table is materialized, so the memory a frame
needs is that of its largest grouping. fct_vote_choices (tens of millions of rows) has its
own builder, :func:`vote_choices_frame`, which gives the same frame as its plain SQL.

Only the columns a suite needs are read; ``respondent_email`` exists in no warehouse
table and is never read.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from orchestration.quality.scrub import EMAIL_PATTERN
from orchestration.settings import DBT_PROJECT_DIR

RAW_TABLES = ("load_ledger", "votes", "vote_quarantine", "workshop_events", "workshop_quarantine")

# Dimension marts and their key column.
DIMENSION_KEYS: Mapping[str, str] = {
    "dim_country": "country_code",
    "dim_region": "region_code",
    "dim_question": "question_code",
    "dim_option": "option_code",
    "dim_library_type": "library_type_code",
    "dim_age_group": "age_group_code",
    "dim_language": "language_code",
    "dim_experience_band": "experience_band_code",
}
FACT_MARTS = (
    "fct_votes",
    "fct_vote_choices",
    "fct_workshops",
    "fct_workshop_answers",
    "fct_participation",
    "fct_theme_rankings",
    "rpt_headline_figures",
    "rpt_quarantine_summary",
)
MART_TABLES = (*DIMENSION_KEYS, *FACT_MARTS)

SQL_PARAMS = {"email_pattern": EMAIL_PATTERN}


@dataclass(frozen=True)
class FrameSpec:
    """One validation: the frame ``name`` (GX dataframe asset, validation definition and
    checkpoint share it) validated against ``suite``."""

    name: str
    suite: str
    table: str  # the warehouse table the result is about
    sql: str | None = None  # lowercase SQL; {table} placeholders resolve to quoted names
    # A faster way to the same frame, or None when it cannot apply (then ``sql`` runs).
    builder: Callable[[duckdb.DuckDBPyConnection, Catalog], pd.DataFrame | None] | None = None


def _profile(source: str, domains: Sequence[str], measures: Mapping[str, str]) -> str:
    """Domain columns (distinct values, sorted) and one row of measures, side by side.

    One scan of ``src`` computes every domain (``list(distinct ...)``) and every measure that
    is a plain aggregate; a measure may also be a scalar subquery over ``src`` (a duplicate
    key needs its own grouping) or over another table. ``src`` is never materialized: a
    subquery scans the table again, which costs far less than holding every column of
    millions of records in memory."""
    columns = [f"list_sort(list(distinct {c}) filter (where {c} is not null)) as {c}" for c in domains]
    columns += [f"{expr} as {name}" for name, expr in measures.items()]
    parts = [f"(select unnest({c}) as {c} from agg)" for c in domains]
    parts.append("(select " + ", ".join(measures) + " from agg)")
    return (
        f"with src as not materialized ({source}),\nagg as materialized (select " + ",\n  ".join(columns)
        + " from src)\nselect * from " + "\npositional join ".join(parts)
    )


def _any_null(columns: Sequence[str]) -> str:
    return "count(*) filter (where " + " or ".join(f"{c} is null" for c in columns) + ")"


def _duplicates(columns: Sequence[str], where: str = "true") -> str:
    """Records beyond the first of each key (0 when the key is unique)."""
    key = ", ".join(columns)
    return (
        f"(select coalesce(sum(n - 1), 0)::bigint from (select count(*) as n from src where {where} group by {key}))"
    )


_QUESTIONS = [f"q{i}" for i in range(1, 7)]

RAW_VOTES_SQL = _profile(
    "select response_id, submitted_at, language, country, library_type, years_experience, age_group, "
    "respondent_key, q1, q2, q3, q4, q5, q6 from {votes} where outcome = 'accepted'",
    ["language", "country", "library_type", "age_group", "years_experience", *_QUESTIONS],
    {
        "accepted_votes": "count(*)",
        "missing_required_values": _any_null(
            ["response_id", "submitted_at", "language", "country", "library_type", "years_experience",
             "age_group", *_QUESTIONS]
        ),
        "duplicate_response_ids": _duplicates(["response_id"]),
        "first_submitted_at": "min(submitted_at)",
        "last_submitted_at": "max(submitted_at)",
        "malformed_respondent_keys": (
            "count(*) filter (where respondent_key is not null "
            "and not regexp_full_match(respondent_key, '[0-9a-f]{64}'))"
        ),
        # only answers with two or more codes can repeat one (case: evaluated lazily)
        "repeated_option_codes": "count(*) filter (where "
        + " or ".join(
            f"case when contains({q}, ';') then len(string_split({q}, ';')) <> len(list_distinct(string_split({q}, ';')))"
            " else false end"
            for q in _QUESTIONS
        )
        + ")",
        "records_of_unknown_files": "(select count(*) from {votes} where sha256 not in (select sha256 from {load_ledger}))",
    },
)

_EVENT_REQUIRED = (
    "event_id is null or workshop_id is null or occurred_at is null or event_type is null or outcome is null"
    " or (event_type = 'workshop_registered' and (kind is null or held_on is null or country is null"
    " or language is null))"
    " or (event_type = 'participant_checked_in' and (participant_ref is null or country is null"
    " or library_type is null or years_experience is null or age_group is null))"
    " or (event_type = 'answer_ranked' and (question is null or rank is null or option_code is null))"
    " or (event_type = 'workshop_closed' and reported_participants is null)"
)
_ACCEPTED = "outcome = 'accepted'"

RAW_WORKSHOP_EVENTS_SQL = _profile(
    "select sha256, event_id, event_type, workshop_id, occurred_at, kind, held_on, country, language, "
    "participant_ref, library_type, years_experience, age_group, question, rank, option_code, "
    "reported_participants, outcome from {workshop_events}",
    ["event_type", "outcome", "kind", "country", "language", "library_type", "age_group", "years_experience",
     "question", "rank", "option_code", "reported_participants"],
    {
        "events": "count(*)",
        "missing_required_values": f"count(*) filter (where {_EVENT_REQUIRED})",
        "first_held_on": "min(held_on)",
        "last_held_on": "max(held_on)",
        "options_of_another_question": (
            "count(*) filter (where option_code is not null and split_part(option_code, '-', 1) <> question)"
        ),
        "repeated_event_ids": _duplicates(["event_id"], "outcome <> 'duplicate'"),
        "repeated_accepted_check_ins": _duplicates(
            ["workshop_id", "participant_ref"], f"{_ACCEPTED} and event_type = 'participant_checked_in'"
        ),
        "repeated_accepted_answers": _duplicates(
            ["workshop_id", "question", "rank"], f"{_ACCEPTED} and event_type = 'answer_ranked'"
        ),
        "repeated_accepted_registrations_or_closures": _duplicates(
            ["workshop_id", "event_type"], f"{_ACCEPTED} and event_type in ('workshop_registered', 'workshop_closed')"
        ),
        "accepted_events_of_incomplete_workshops": (
            f"count(*) filter (where {_ACCEPTED} and workshop_id not in ("
            f"select workshop_id from src where {_ACCEPTED} and event_type = 'workshop_registered' intersect "
            f"select workshop_id from src where {_ACCEPTED} and event_type = 'workshop_closed'))"
        ),
        "records_of_unknown_files": "count(*) filter (where sha256 not in (select sha256 from {load_ledger}))",
    },
)


def _quarantine_sql(table: str) -> str:
    return _profile(
        f"select sha256, reason, detail, record_text from {{{table}}}",
        ["reason"],
        {
            "quarantined_records": "count(*)",
            "missing_reason_or_detail": _any_null(["reason", "detail"]),
            "unmasked_email_values": (
                "count(*) filter (where regexp_matches(coalesce(record_text, '') || ' ' || coalesce(detail, ''), "
                "$email_pattern))"
            ),
            "records_of_unknown_files": "count(*) filter (where sha256 not in (select sha256 from {load_ledger}))",
        },
    )


LOAD_LEDGER_SQL = """
with outcomes as (
    select sha256, count(*) as n from {votes} group by sha256
    union all select sha256, count(*) from {vote_quarantine} group by sha256
    union all select sha256, count(*) from {workshop_events} group by sha256
    union all select sha256, count(*) from {workshop_quarantine} group by sha256
),
accounted as (select sha256, sum(n) as records_accounted from outcomes group by sha256),
files as (
    select l.sha256, l.source, l.file_name, l.delivery_seq, l.size_bytes, l.file_status, l.records_read,
        coalesce(a.records_accounted, 0)::bigint as records_accounted,
        case when l.records_read is distinct from coalesce(a.records_accounted, 0)
            then l.file_name || ' (delivery ' || l.delivery_seq || ')' end as unreconciled_file
    from {load_ledger} l left join accounted a using (sha256)
    order by l.file_name, l.delivery_seq
)
select * from files positional join (
    select coalesce(sum(n), 0)::bigint as records_of_unknown_files
    from outcomes where sha256 not in (select sha256 from {load_ledger})
)
"""

FCT_VOTES_SQL = _profile(
    "select vote_key, respondent_key, submitted_at_utc, submitted_on, language_code, country_code, region_code, "
    "library_type_code, age_group_code, years_experience, experience_band_code, questions_answered, "
    "options_chosen from {fct_votes}",
    ["language_code", "country_code", "region_code", "library_type_code", "age_group_code",
     "experience_band_code", "years_experience", "questions_answered", "options_chosen"],
    {
        "votes": "count(*)",
        "accepted_raw_votes": "(select count(*) from {votes} where outcome = 'accepted')",
        "duplicate_vote_keys": _duplicates(["vote_key"]),
        "missing_required_values": _any_null(
            ["vote_key", "submitted_at_utc", "submitted_on", "language_code", "country_code", "region_code",
             "library_type_code", "age_group_code", "years_experience", "experience_band_code",
             "questions_answered", "options_chosen"]
        ),
        "malformed_respondent_keys": (
            "count(*) filter (where respondent_key is not null "
            "and not regexp_full_match(respondent_key, '[0-9a-f]{64}'))"
        ),
        "first_submitted_at": "min(submitted_at_utc)",
        "last_submitted_at": "max(submitted_at_utc)",
        # Rules on a combination of values: checked once per distinct combination (few),
        # weighted by its number of votes, rather than once per vote.
        "regions_not_of_country": (
            "(select coalesce(sum(n) filter (where region_code is distinct from "
            "(select c.region_code from {dim_country} c where c.country_code = v.country_code)), 0)::bigint "
            "from (select country_code, region_code, count(*) as n from src group by all) v)"
        ),
        "bands_not_of_experience": (
            "(select coalesce(sum(n) filter (where not exists (select 1 from {dim_experience_band} b "
            "where b.experience_band_code = v.experience_band_code "
            "and v.years_experience >= b.min_years "
            "and (b.max_years is null or v.years_experience <= b.max_years))), 0)::bigint "
            "from (select experience_band_code, years_experience, count(*) as n from src group by all) v)"
        ),
    },
)

_CHOICES_SOURCE = "select vote_key, question_code, option_code, choice_position from {fct_vote_choices}"
_CHOICES_DOMAINS = ["question_code", "option_code", "choice_position"]
_CHOICES_MEASURES = {
    "choices": "count(*)",
    "missing_required_values": _any_null(["vote_key", "question_code", "option_code", "choice_position"]),
    "options_of_another_question": "count(*) filter (where split_part(option_code, '-', 1) <> question_code)",
    "duplicate_choices": _duplicates(["vote_key", "question_code", "option_code"]),
    # distinct options per answer, counted without a distinct aggregate (which cannot spill)
    "answers_with_more_than_five_options": (
        "(select count(*) from (select 1 from (select distinct vote_key, question_code, option_code from src "
        "where option_code is not null) group by vote_key, question_code having count(*) > 5))"
    ),
    "choices_of_unknown_votes": "count(*) filter (where vote_key not in (select vote_key from {fct_votes}))",
}
# The plain SQL of the frame: exact, but at tens of millions of choices its groupings by
# (vote, question, option) spill for minutes. vote_choices_frame computes the same frame
# faster and falls back to this when the data are too odd for its encoding.
FCT_VOTE_CHOICES_SQL = _profile(_CHOICES_SOURCE, _CHOICES_DOMAINS, _CHOICES_MEASURES)

# A vote's choices form a set of (question, option) pairs; the distinct pairs of the whole
# table are few (60 in the reference data). Numbering them turns each vote's choices into a
# bit mask, so one grouping by vote (millions of groups, not tens of millions) gives the
# rules on choices: duplicates = choices - bits set; options of an answer = bits set among
# its question's pairs. Votes are grouped by a 64-bit hash of their key (much cheaper than
# the 32-character key). Two votes whose keys share a hash would share a group: the counts
# of that group can only grow (never hide a fault), so a count of 0 is exact, and any other
# count is recounted exactly on the rows of the groups concerned.
_CHOICE_GROUPS = "gvw_choice_groups"  # a temp table of the (read-only) connection
_MAX_MASK_WORDS = 8  # 512 distinct pairs; more means odd codes: use the plain SQL

# One scan: the choices per (question, option) pair - numbered for the masks - and the
# distinct positions, as two grouping sets.
_CHOICE_GROUPS_SQL = f"""
create or replace temp table {_CHOICE_GROUPS} as
with grouped as (
    select question_code, option_code, choice_position,
        grouping(question_code, option_code) = 0 as is_pair,
        count(*) as choices
    from {{fct_vote_choices}}
    group by grouping sets ((question_code, option_code), (choice_position))
),
numbered as (
    select *, case when is_pair then row_number() over (partition by is_pair order by question_code, option_code) - 1
        end as bit
    from grouped
)
select *, hash(question_code, option_code) as pair_hash,
    (bit // 64)::integer as word, 1::ubigint << (bit % 64)::ubigint as bit_mask
from numbered
"""
_CHOICE_PAIRS = f"select * from {_CHOICE_GROUPS} where is_pair"  # the numbered pairs


def _mask_words(words: int) -> str:
    """Per group, the ``words`` 64-bit words of the mask of its pairs (``word``, ``bit_mask``)."""
    if words == 1:
        return "coalesce(bit_or(bit_mask), 0)::ubigint as m0"
    return ", ".join(
        f"coalesce(bit_or(bit_mask) filter (where word = {w}), 0)::ubigint as m{w}" for w in range(words)
    )


def vote_choices_frame(conn: duckdb.DuckDBPyConnection, catalog: Catalog) -> pd.DataFrame | None:
    """The fct_vote_choices frame (same columns and values as FCT_VOTE_CHOICES_SQL) in three
    scans of the table: its distinct (question, option) pairs, one mask per vote, the vote
    keys fct_votes lacks. None when the pairs are too many or two share a hash (then the
    plain SQL must run)."""
    conn.execute(resolve_tables(_CHOICE_GROUPS_SQL, catalog))
    try:
        pairs, hashes = conn.execute(f"select count(*), count(distinct pair_hash) from ({_CHOICE_PAIRS})").fetchone()
        words = max(1, -(-pairs // 64))
        if pairs != hashes or words > _MAX_MASK_WORDS:
            return None
        # Per question, the mask of its pairs with an option (count(distinct) ignores nulls).
        (question_masks,) = conn.execute(
            f"select coalesce(list([{', '.join(f'm{w}' for w in range(words))}]), []) from ("
            f"select question_code, {_mask_words(words)} from ({_CHOICE_PAIRS}) "
            f"where option_code is not null group by question_code)"
        ).fetchone()
        bits_set = " + ".join(f"bit_count(m{w})" for w in range(words))
        bits_of_question = " + ".join(f"bit_count(m{w} & q[{w + 1}])" for w in range(words))
        per_vote = f"""
per_vote as (
    select hash(c.vote_key) as vote_hash, count(*) as n, {_mask_words(words)}
    from {{fct_vote_choices}} c join ({_CHOICE_PAIRS}) p on hash(c.question_code, c.option_code) = p.pair_hash
    group by vote_hash
),
faults as (
    select vote_hash, n - ({bits_set}) as duplicates,
        len(list_filter($question_masks::ubigint[][], lambda q: {bits_of_question} > 5)) as long_answers
    from per_vote
)"""
        counts = f"""
with {per_vote}
select coalesce(sum(duplicates), 0)::bigint, coalesce(sum(long_answers), 0)::bigint,
    any_value(keys.unknown), any_value(keys.missing)
from faults, (
    select count(*) filter (where vote_key not in (select vote_key from {{fct_votes}})) as unknown,
        {_any_null(["vote_key", "question_code", "option_code", "choice_position"])} as missing
    from {{fct_vote_choices}}
) keys
"""
        params = {"question_masks": question_masks}
        duplicates, long_answers, unknown, missing = conn.execute(resolve_tables(counts, catalog), params).fetchone()
        if duplicates or long_answers:
            # Exact counts on the rows of the groups with a fault (or a shared hash).
            exact = f"""
with {per_vote},
suspect as (
    select c.* from {{fct_vote_choices}} c
    where hash(c.vote_key) in (select vote_hash from faults where duplicates > 0 or long_answers > 0)
)
select
    (select coalesce(sum(n - 1), 0)::bigint from (
        select count(*) as n from suspect group by vote_key, question_code, option_code)),
    (select count(*) from (
        select 1 from suspect group by vote_key, question_code having count(distinct option_code) > 5))
"""
            duplicates, long_answers = conn.execute(resolve_tables(exact, catalog), params).fetchone()
        frame = f"""
select * from (
    select unnest(list_sort(list(distinct question_code) filter (where question_code is not null))) as question_code
    from ({_CHOICE_PAIRS})
) positional join (
    select unnest(list_sort(list(distinct option_code) filter (where option_code is not null))) as option_code
    from ({_CHOICE_PAIRS})
) positional join (
    select unnest(list_sort(list(choice_position) filter (where choice_position is not null))) as choice_position
    from {_CHOICE_GROUPS} where not is_pair
) positional join (
    select coalesce(sum(choices), 0)::bigint as choices,
        $missing::bigint as missing_required_values,
        coalesce(sum(choices) filter (where split_part(option_code, '-', 1) <> question_code), 0)::bigint
            as options_of_another_question,
        $duplicates::bigint as duplicate_choices,
        $long_answers::bigint as answers_with_more_than_five_options,
        $unknown::bigint as choices_of_unknown_votes
    from ({_CHOICE_PAIRS})
)
"""
        values = {"missing": missing, "duplicates": duplicates, "long_answers": long_answers, "unknown": unknown}
        return conn.execute(frame, values).df()
    finally:
        conn.execute(f"drop table if exists {_CHOICE_GROUPS}")


FCT_WORKSHOPS_SQL = """
with w as (
    select workshop_id, workshop_kind_code, held_on, country_code, region_code, language_code,
        participants, reported_participants, participants_mismatch,
        (participants <> reported_participants) as mismatch_expected
    from {fct_workshops} order by workshop_id
)
select * from w positional join (
    select count(*) as workshops,
        (select count(distinct workshop_id) from {workshop_events}
            where outcome = 'accepted' and event_type = 'workshop_registered') as counting_workshops_in_raw
    from w
)
"""

WORKSHOP_PARTICIPANT_COUNTS_SQL = """
select workshop_id, participants, reported_participants,
    case when participants is distinct from reported_participants then
        workshop_id || ': ' || participants || ' checked in, ' || reported_participants || ' reported'
    end as mismatched_workshop
from {fct_workshops} order by workshop_id
"""

FCT_WORKSHOP_ANSWERS_SQL = _profile(
    "select workshop_id, question_code, answer_rank, option_code, borda_points from {fct_workshop_answers}",
    ["question_code", "answer_rank", "option_code", "borda_points"],
    {
        "answers": "count(*)",
        "missing_required_values": _any_null(
            ["workshop_id", "question_code", "answer_rank", "option_code", "borda_points"]
        ),
        "duplicate_answer_keys": _duplicates(["workshop_id", "question_code", "answer_rank"]),
        "points_not_of_rank": "count(*) filter (where borda_points <> 6 - answer_rank)",
        "options_of_another_question": "count(*) filter (where split_part(option_code, '-', 1) <> question_code)",
        "answers_of_uncounted_workshops": (
            "count(*) filter (where workshop_id not in (select workshop_id from {fct_workshops}))"
        ),
    },
)

FCT_PARTICIPATION_SQL = _profile(
    "select participant_key, channel, country_code, region_code, library_type_code, age_group_code, "
    "years_experience, experience_band_code from {fct_participation}",
    ["channel", "country_code", "region_code", "library_type_code", "age_group_code", "experience_band_code",
     "years_experience"],
    {
        "participants": "count(*)",
        "duplicate_participant_keys": _duplicates(["participant_key"]),
        "missing_required_values": _any_null(
            ["participant_key", "channel", "country_code", "region_code", "library_type_code", "age_group_code",
             "years_experience", "experience_band_code"]
        ),
        "vote_participants": "count(*) filter (where channel = 'vote')",
        "workshop_participants": "count(*) filter (where channel = 'workshop')",
        "votes_in_fct_votes": "(select count(*) from {fct_votes})",
        "participants_in_fct_workshops": "(select coalesce(sum(participants), 0) from {fct_workshops})::bigint",
        "votes_plus_workshop_participants": (
            "(select count(*) from {fct_votes}) + (select coalesce(sum(participants), 0) from {fct_workshops})::bigint"
        ),
    },
)


FCT_THEME_RANKINGS_SQL = """
with numbered as (
    select scope_type, scope_value, question_code, option_code, votes, vote_share, vote_rank,
        workshop_points, workshop_rank,
        row_number() over (partition by scope_type, scope_value, question_code order by vote_rank) as vote_rn,
        row_number() over (partition by scope_type, scope_value, question_code, workshop_rank is null
                           order by workshop_rank) as workshop_rn
    from {fct_theme_rankings}
),
flagged as (
    select *,
        bool_or(vote_rank is distinct from vote_rn) over ranking as vote_gap,
        bool_or(workshop_rank is not null and workshop_rank <> workshop_rn) over ranking
            or count(workshop_rank) over ranking not in (0, count(*) over ranking) as workshop_gap
    from numbered
    window ranking as (partition by scope_type, scope_value, question_code)
)
select scope_type, scope_value, question_code, option_code, votes, vote_share, vote_rank,
    workshop_points, workshop_rank,
    case when vote_gap then scope_type || '=' || scope_value || ' ' || question_code end
        as vote_ranks_not_contiguous_in,
    case when workshop_gap then scope_type || '=' || scope_value || ' ' || question_code end
        as workshop_ranks_not_contiguous_in
from flagged order by scope_type, scope_value, question_code, option_code
"""
# Rank contiguity: within each (scope_type, scope_value, question_code) the ranks sorted
# must be exactly 1..n - each rank equals its row number - so a gap or a tie flags the
# group. Workshop ranks are all null for scope types workshops lack (never partly null).

RPT_HEADLINE_FIGURES_SQL = """
select h.*,
    h.votes + h.workshop_participants as votes_plus_workshop_participants,
    (select count(*) from {votes} where outcome = 'accepted') as accepted_raw_votes
from {rpt_headline_figures} h
"""

RPT_QUARANTINE_SUMMARY_SQL = """
with raw_outcomes as (
    select 'votes' as source, reason, count(*) as n from {vote_quarantine} group by all
    union all select 'votes', outcome, count(*) from {votes} where outcome <> 'accepted' group by all
    union all select 'workshops', reason, count(*) from {workshop_quarantine} group by all
    union all select 'workshops', outcome, count(*) from {workshop_events} where outcome <> 'accepted' group by all
),
s as (
    select s.source, s.reason, s.records, coalesce(r.n, 0)::bigint as raw_records
    from {rpt_quarantine_summary} s left join raw_outcomes r using (source, reason)
    order by s.source, s.reason
)
select * from s positional join (
    select count(*) as raw_outcomes_missing_from_summary from raw_outcomes r
    where not exists (select 1 from {rpt_quarantine_summary} s where s.source = r.source and s.reason = r.reason)
)
"""


def _dimension_sql(table: str, key: str) -> str:
    return _profile(
        f"select {key} as code from {{{table}}}",
        [],
        {"rows": "count(*)", "duplicate_keys": _duplicates(["code"]), "missing_keys": _any_null(["code"])},
    )


def _specs() -> dict[str, FrameSpec]:
    specs = [
        FrameSpec("raw_load_ledger", "raw_load_ledger", "load_ledger", LOAD_LEDGER_SQL),
        FrameSpec("raw_votes_accepted", "raw_votes_accepted", "votes", RAW_VOTES_SQL),
        FrameSpec("raw_vote_quarantine", "raw_vote_quarantine", "vote_quarantine", _quarantine_sql("vote_quarantine")),
        FrameSpec("raw_workshop_events", "raw_workshop_events", "workshop_events", RAW_WORKSHOP_EVENTS_SQL),
        FrameSpec(
            "raw_workshop_quarantine", "raw_workshop_quarantine", "workshop_quarantine",
            _quarantine_sql("workshop_quarantine"),
        ),
        FrameSpec("fct_votes", "fct_votes", "fct_votes", FCT_VOTES_SQL),
        FrameSpec(
            "fct_vote_choices", "fct_vote_choices", "fct_vote_choices", FCT_VOTE_CHOICES_SQL, vote_choices_frame
        ),
        FrameSpec("fct_workshops", "fct_workshops", "fct_workshops", FCT_WORKSHOPS_SQL),
        FrameSpec(
            "workshop_participant_counts", "workshop_participant_counts", "fct_workshops",
            WORKSHOP_PARTICIPANT_COUNTS_SQL,
        ),
        FrameSpec("fct_workshop_answers", "fct_workshop_answers", "fct_workshop_answers", FCT_WORKSHOP_ANSWERS_SQL),
        FrameSpec("fct_participation", "fct_participation", "fct_participation", FCT_PARTICIPATION_SQL),
        FrameSpec("fct_theme_rankings", "fct_theme_rankings", "fct_theme_rankings", FCT_THEME_RANKINGS_SQL),
        FrameSpec("rpt_headline_figures", "rpt_headline_figures", "rpt_headline_figures", RPT_HEADLINE_FIGURES_SQL),
        FrameSpec(
            "rpt_quarantine_summary", "rpt_quarantine_summary", "rpt_quarantine_summary", RPT_QUARANTINE_SUMMARY_SQL
        ),
    ]
    specs += [
        FrameSpec(f"{table}", "mart_dimension", table, _dimension_sql(table, key))
        for table, key in DIMENSION_KEYS.items()
    ]
    # The personal-data frame is built from the catalog (see personal_data_frame).
    specs += [FrameSpec(f"{table}__personal_data", "mart_personal_data", table) for table in MART_TABLES]
    return {s.name: s for s in specs}


FRAMES: Mapping[str, FrameSpec] = _specs()


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Catalog:
    """Qualified, quoted names of warehouse tables, looked up by (unique) table name."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        rows = conn.execute(
            "select table_name, table_schema from information_schema.tables "
            "where table_catalog = current_database() order by table_schema"
        ).fetchall()
        self._schemas: dict[str, str] = {}
        for table, schema in rows:
            self._schemas.setdefault(table, schema)

    def has(self, table: str) -> bool:
        return table in self._schemas

    def qualified(self, table: str) -> str:
        if table not in self._schemas:
            raise LookupError(f"table {table!r} is not in the warehouse (has its asset been materialized?)")
        return f"{quote_ident(self._schemas[table])}.{quote_ident(table)}"



_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def resolve_tables(sql: str, catalog: Catalog) -> str:
    """``sql`` with each ``{table}`` placeholder replaced by the table's quoted, qualified name."""
    return _PLACEHOLDER.sub(lambda m: catalog.qualified(m.group(1)), sql)


def build_frame(conn: duckdb.DuckDBPyConnection, spec: FrameSpec, catalog: Catalog | None = None) -> pd.DataFrame:
    """The frame of ``spec``, computed in DuckDB (``catalog``: of ``conn``, if already read)."""
    catalog = catalog or Catalog(conn)
    if spec.suite == "mart_personal_data":
        return personal_data_frame(conn, catalog, spec.table)
    conn.execute("set enable_progress_bar = false")
    if spec.builder is not None:
        frame = spec.builder(conn, catalog)
        if frame is not None:
            return frame
    assert spec.sql is not None
    sql = resolve_tables(spec.sql, catalog)
    params = {k: v for k, v in SQL_PARAMS.items() if f"${k}" in sql}
    return conn.execute(sql, params).df()


def personal_data_frame(conn: duckdb.DuckDBPyConnection, catalog: Catalog, table: str) -> pd.DataFrame:
    """One row per column of ``table``: its name, and the name again when any of its values
    looks like an e-mail address (else null). One scan of the table for all text columns."""
    qualified = catalog.qualified(table)
    columns = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_name = ? and table_schema = (select table_schema from information_schema.tables "
        "where table_name = ? order by table_schema limit 1) order by ordinal_position",
        [table, table],
    ).fetchall()
    text_columns = [name for name, data_type in columns if data_type.upper().startswith(("VARCHAR", "TEXT", "STRING"))]
    hits: dict[str, int] = {}
    if text_columns:
        # contains('@') first: cheap, and (case is lazy) the regex runs only on candidates.
        aggregates = ", ".join(
            f"count(*) filter (where case when contains({quote_ident(c)}, '@') "
            f"then regexp_matches({quote_ident(c)}, $email_pattern) else false end)"
            for c in text_columns
        )
        row = conn.execute(f"select {aggregates} from {qualified}", {"email_pattern": EMAIL_PATTERN}).fetchone()
        hits = dict(zip(text_columns, row or (), strict=True))
    names = [name for name, _ in columns]
    return pd.DataFrame(
        {
            "column_name": pd.Series(names, dtype="object"),
            "email_like_column": pd.Series([n if hits.get(n, 0) else None for n in names], dtype="object"),
        }
    )


def country_codes() -> list[str]:
    """The reference country codes (the dbt seed), for the ``$PARAMETER`` of the suites."""
    with (DBT_PROJECT_DIR / "seeds" / "countries.csv").open(encoding="utf-8", newline="") as f:
        return sorted(row["country_code"].strip().upper() for row in csv.DictReader(f))


def expectation_parameters() -> dict[str, object]:
    return {"country_codes": country_codes()}


def tables_read(spec: FrameSpec) -> set[str]:
    """The warehouse tables a frame reads (its checks run after their assets)."""
    if spec.sql is None:
        return {spec.table}
    return set(_PLACEHOLDER.findall(spec.sql))
