"""Outcomes of valid records (accepted / duplicate / superseded / incomplete_workshop),
recomputed set-based over everything loaded (contract-decisions.md).

Record order is (file name, delivery, record number): it depends only on names and
content, so recomputing over all loaded records gives the same outcomes whatever the
order in which files arrived, i.e. the same as one load of everything.

Almost every record is accepted: the queries find the few that are not (records sharing a
response_id, an event_id, a workshop's registration, ...) with hash aggregates, then
write only the rows whose outcome changes.
"""

from __future__ import annotations

import duckdb

# Order of every loaded file: (file name, delivery) -> rank; a record's order key packs
# the file rank and its record or line number into one BIGINT (votes) or is the pair
# (file rank, line number) (workshop events).
_FILE_ORDER_SQL = """
    create or replace temp table gvw_file_order as
    select sha256, row_number() over (order by file_name, delivery_seq) as file_rank
    from raw.load_ledger
"""

_VOTE_SPECIAL_SQL = """
    create or replace temp table gvw_vote_special as
    with multi as (
        -- response_ids seen more than once, found by their 64-bit hash (a hash table of
        -- integers, not of every id; a colliding id only joins the ranking below, alone)
        select hash(response_id) as h from raw.votes group by h having count(*) > 1
    ),
    v as (
        select v.sha256, v.record_number, v.response_id, v.submitted_at,
            (f.file_rank << 32) + v.record_number as ord,
            -- every contract column, as stored: trimmed, country upper-cased, e-mail as its
            -- (case-insensitive) key, choices normalised; is_test is false for valid records
            struct_pack(submitted_at := v.submitted_at, language := v.language, country := v.country,
                library_type := v.library_type, years_experience := v.years_experience,
                age_group := v.age_group, respondent_key := v.respondent_key,
                q1 := v.q1, q2 := v.q2, q3 := v.q3, q4 := v.q4, q5 := v.q5, q6 := v.q6) as version
        from raw.votes v join gvw_file_order f using (sha256)
        where hash(v.response_id) in (select h from multi)
    ),
    w as (
        select *,
            -- the winning version: latest submitted_at, then the later file, delivery, record
            first_value(version) over (partition by response_id order by submitted_at desc, ord desc) as winner,
            -- copies of one version in record order: the first one is the accepted copy
            row_number() over (partition by response_id, version order by ord) as copy_rank
        from v
    )
    select sha256, record_number,
        case when version is distinct from winner then 'superseded' else 'duplicate' end as outcome
    from w
    where version is distinct from winner or copy_rank > 1
"""

_WORKSHOP_SPECIAL_SQL = """
    create or replace temp table gvw_ws_special as
    with
    -- a repeated event_id: the first delivery in record order wins, the others are duplicates
    repeat_losers as materialized (
        select sha256, line_number from (
            select e.sha256, e.line_number,
                row_number() over (partition by e.event_id order by f.file_rank, e.line_number) as n
            from raw.workshop_events e join gvw_file_order f using (sha256)
            -- repeated ids found by their 64-bit hash (see _VOTE_SPECIAL_SQL)
            where hash(e.event_id) in (select hash(event_id) as h from raw.workshop_events group by h
                                       having count(*) > 1))
        where n > 1
    ),
    -- the other events (read again where needed rather than copied: they are most of the table)
    s as (
        select e.* from raw.workshop_events e anti join repeat_losers r using (sha256, line_number)
    ),
    -- registrations and closures per workshop, check-ins per participant: the earliest
    -- occurred_at wins (ties: record order); only groups of two or more need ranking
    earliest_losers as (
        select sha256, line_number from (
            select s.sha256, s.line_number,
                row_number() over (partition by s.workshop_id, s.event_type, s.participant_ref
                                   order by s.occurred_at, f.file_rank, s.line_number) as n
            from s join gvw_file_order f using (sha256)
            semi join (
                select workshop_id, event_type, participant_ref from s where event_type <> 'answer_ranked'
                group by all having count(*) > 1) g
            on g.workshop_id = s.workshop_id and g.event_type = s.event_type
                and g.participant_ref is not distinct from s.participant_ref)
        where n > 1
    ),
    -- answers per workshop, question and rank: the latest occurred_at wins (ties: later record)
    latest_losers as (
        select sha256, line_number from (
            select s.sha256, s.line_number,
                row_number() over (partition by s.workshop_id, s.question, s.rank
                                   order by s.occurred_at desc, f.file_rank desc, s.line_number desc) as n
            from s join gvw_file_order f using (sha256)
            semi join (
                select workshop_id, question, rank from s where event_type = 'answer_ranked'
                group by all having count(*) > 1) g
            on g.workshop_id = s.workshop_id and g.question = s.question and g.rank = s.rank
            where s.event_type = 'answer_ranked')
        where n > 1
    ),
    -- a workshop counts with a valid registration and a valid closure (the winners)
    counting as (
        select workshop_id from s where event_type in ('workshop_registered', 'workshop_closed')
        group by workshop_id having count(distinct event_type) = 2
    ),
    ranked as materialized (
        select sha256, line_number, 'duplicate' as outcome from repeat_losers
        union all select sha256, line_number, 'superseded' from latest_losers
        union all select sha256, line_number, 'duplicate' from earliest_losers
    )
    select * from ranked
    union all
    select sha256, line_number, 'incomplete_workshop' from s
    where workshop_id not in (select workshop_id from counting)
      and not exists (select 1 from ranked r where r.sha256 = s.sha256 and r.line_number = s.line_number)
"""


def outcomes_pending(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether loaded records still lack an outcome (a run stopped before recomputing)."""
    return bool(conn.execute(
        "select exists(select 1 from raw.votes where outcome is null)"
        " or exists(select 1 from raw.workshop_events where outcome is null)"
    ).fetchone()[0])


def _apply(conn: duckdb.DuckDBPyConnection, table: str, number: str, special: str) -> tuple[int, int]:
    """Write the outcomes: the ``special`` rows get theirs, every other row 'accepted'.
    Returns (rows written, of which rows that had an outcome before)."""
    # identifiers are ours
    changed = f"""
        select t.outcome as old_outcome, s.outcome as new_outcome
        from {table} t left join {special} s on s.sha256 = t.sha256 and s.{number} = t.{number}
        where t.outcome is distinct from coalesce(s.outcome, 'accepted')
    """
    written, earlier = conn.execute(f"select count(*), count(old_outcome) from ({changed})").fetchone()
    if written:
        conn.execute(f"""
            update {table} set outcome = s.outcome from {special} s
            where s.sha256 = {table}.sha256 and s.{number} = {table}.{number}
              and {table}.outcome is distinct from s.outcome""")
        conn.execute(f"""
            update {table} set outcome = 'accepted'
            where outcome is distinct from 'accepted'
              and not exists (select 1 from {special} s
                              where s.sha256 = {table}.sha256 and s.{number} = {table}.{number})""")
    return written, earlier


def recompute_outcomes(conn: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Recompute every outcome, written in one transaction; returns (rows written, of which
    rows that had an outcome before, i.e. earlier deliveries whose outcome changed)."""
    conn.execute(_FILE_ORDER_SQL)
    conn.execute(_VOTE_SPECIAL_SQL)
    conn.execute(_WORKSHOP_SPECIAL_SQL)
    conn.execute("begin transaction")
    try:
        votes = _apply(conn, "raw.votes", "record_number", "gvw_vote_special")
        events = _apply(conn, "raw.workshop_events", "line_number", "gvw_ws_special")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("drop table if exists gvw_file_order; drop table if exists gvw_vote_special; "
                  "drop table if exists gvw_ws_special")
    return votes[0] + events[0], votes[1] + events[1]
