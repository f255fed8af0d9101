-- The benchmark FLOOR: the pipeline's work as one hand-written DuckDB script, run in one
-- process (bench/run.py runs it; see bench/README.md).
--
-- Same work as the pipeline, without its orchestration, per-file bookkeeping or tests:
--   ingest  every landing record checked against the contract (landing-zone.md and
--           docs/contract-decisions.md): all reason codes in their order of precedence,
--           whole-file outcomes (missing_column, not UTF-8), vote versions resolved
--           (accepted / duplicate / superseded), workshop events resolved (duplicate,
--           superseded, incomplete_workshop), e-mails pseudonymised; raw tables persisted;
--   marts   votes, choices, counting workshops, check-ins, answers, participation, theme
--           rankings for every scope, headline figures, quarantine summary; persisted;
--   export  the main datasets as Parquet (theme rankings with small-cell suppression).
--
-- Parameters (set by the runner with `set variable`, never formatted into this text):
--   landing_dir  absolute path of landing/ (votes/*.csv, workshops/*.jsonl)
--   seeds_dir    the dbt seeds folder (countries.csv, options.csv: the reference data)
--   out_dir      an existing folder for the Parquet files
--   pii_salt     salt of the respondent key
--   min_cell     smallest vote count shown outside the global scope
--
-- `-- @section <name>` lines split the script into the phases the runner times.
-- Limitations (none occurs in generated landing zones): the landing zone must hold at
-- least one valid-UTF-8 file of each source; a CSV record has at most 32 fields (more are
-- truncated to 32, still "malformed" since no header has that many); the line count of a
-- non-UTF-8 file is read from DuckDB's escaped blob text.

-- @section ingest

-- values are trimmed of Python's str.strip() white space; the regular expression runs
-- only when the first or last character is not printable ASCII (almost never)
create or replace temp macro trim_re() as
    '^[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+|[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+$';
create or replace temp macro trimws(x) as
    case when ascii(x) between 33 and 126 and ascii(right(x, 1)) between 33 and 126 then x
         else regexp_replace(x, trim_re(), '', 'g') end;
-- ISO 8601 with an offset: date, 'T', HH:MM[:SS[.f]], then Z, +-HH:MM or +-HHMM
create or replace temp macro ts_parts(x) as regexp_extract(x,
    '^([0-9]{4}-[0-9]{2}-[0-9]{2})T((?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?)(?:Z|([+-])([01][0-9]|2[0-3]):?([0-5][0-9]))$',
    ['d', 'tm', 'sign', 'oh', 'om']);
-- the UTC instant of ts_parts(), null when the text is not a real calendar date and time
create or replace temp macro ts_utc(p) as
    case when p.d <> '' then try_cast(p.d || ' ' || p.tm as timestamp)
        - to_minutes((case when p.sign = '-' then -1 else 1 end)
                     * (coalesce(try_cast(nullif(p.oh, '') as integer), 0) * 60
                        + coalesce(try_cast(nullif(p.om, '') as integer), 0))) end;
-- option codes of one votes column: split on ';', items trimmed, empty items ignored; then
-- a code not of the question, a repeat, or more than five codes is invalid. Almost every
-- value is plain (code;code;...: no blanks, no empty items): it is its own normal form, and
-- one regular expression built from the question's codes checks membership and the count,
-- so that the lambdas run only for the few values that are not plain.
create or replace temp macro is_plain(v) as regexp_full_match(v, '[A-Za-z0-9-]+(;[A-Za-z0-9-]+)*');
create or replace temp macro choice_items(v) as
    list_filter(list_transform(string_split(v, ';'), x -> trimws(x)), x -> x <> '');
create or replace temp macro choices_norm(v, plain) as
    case when v = '' or plain then v else array_to_string(choice_items(v), ';') end;
create or replace temp macro choices_ok(v, plain, q) as
    case when v = '' then true
         when plain then regexp_full_match(v, getvariable('q_patterns')[q])
             and list_unique(string_split(v, ';')) = len(string_split(v, ';'))
         else len(choice_items(v)) <= 5 and list_unique(choice_items(v)) = len(choice_items(v))
             and list_has_all(getvariable('q_codes')[q], choice_items(v)) end;
-- non-blank lines of a file that is not valid UTF-8 (its escaped blob text)
create or replace temp macro escaped_lines(b) as
    len(list_filter(string_split(b::varchar, '\x0A'),
                    l -> trimws(replace(replace(l, '\x0D', ''), '\x09', '')) <> ''));

-- reference data: the warehouse's own seeds
create or replace temp table ref_countries as
select upper(trimws(country_code)) as country_code, trimws(region_code) as region_code,
    lower(trimws(is_un_member)) = 'true' as is_un_member
from read_csv(getvariable('seeds_dir') || '/countries.csv', header = true, all_varchar = true);
create or replace temp table ref_options as
select trimws(option_code) as option_code, trimws(question_code) as question_code
from read_csv(getvariable('seeds_dir') || '/options.csv', header = true, all_varchar = true);
set variable q_codes = (select map_from_entries(list({'k': question_code, 'v': codes}))
                        from (select question_code, list(option_code order by option_code) as codes
                              from ref_options group by question_code));
-- per question: 1 to 5 of its codes separated by ';' (a plain, valid value)
set variable q_patterns = (
    select map_from_entries(list({'k': question_code, 'v': '(?:' || alts || ')(?:;(?:' || alts || ')){0,4}'}))
    from (select question_code, string_agg(regexp_escape(option_code), '|' order by option_code) as alts
          from ref_options group by question_code));

-- every landing file, its order (file name as bytes) and whether it is valid UTF-8
create or replace temp table landing_files as
select filename as path, source,
    substr(filename, length(getvariable('landing_dir')) + 2) as file_name,
    size as size_bytes,
    try(decode(content)) is not null as is_utf8,
    case when try(decode(content)) is null then escaped_lines(content) end as nonblank_lines
from (
    select *, 'votes' as source from read_blob(getvariable('landing_dir') || '/votes/**/*.csv')
    union all
    select *, 'workshops' as source from read_blob(getvariable('landing_dir') || '/workshops/**/*.jsonl')
);
create or replace temp table file_order as
select path, source, file_name, is_utf8, nonblank_lines,
    row_number() over (partition by source order by file_name) as file_rank
from landing_files;
set variable vote_files = (select list(path order by file_rank) from file_order where source = 'votes' and is_utf8);
set variable ws_files = (select list(path order by file_rank) from file_order where source = 'workshops' and is_utf8);

-- ---- votes -------------------------------------------------------------------------------

-- RFC 4180, every field text; empty fields stay '' and missing trailing fields are null,
-- so a record's field count is its number of non-null fields. Unparseable records go to
-- the rejects table (malformed_row). parallel = false: quoted newlines with null padding.
create or replace temp table vote_lines as
select filename as path, * exclude (filename)
from read_csv(getvariable('vote_files'), header = false, auto_detect = false,
    columns = {'c01': 'varchar', 'c02': 'varchar', 'c03': 'varchar', 'c04': 'varchar', 'c05': 'varchar',
        'c06': 'varchar', 'c07': 'varchar', 'c08': 'varchar', 'c09': 'varchar', 'c10': 'varchar',
        'c11': 'varchar', 'c12': 'varchar', 'c13': 'varchar', 'c14': 'varchar', 'c15': 'varchar',
        'c16': 'varchar', 'c17': 'varchar', 'c18': 'varchar', 'c19': 'varchar', 'c20': 'varchar',
        'c21': 'varchar', 'c22': 'varchar', 'c23': 'varchar', 'c24': 'varchar', 'c25': 'varchar',
        'c26': 'varchar', 'c27': 'varchar', 'c28': 'varchar', 'c29': 'varchar', 'c30': 'varchar',
        'c31': 'varchar', 'c32': 'varchar'},
    delim = ',', quote = '"', escape = '"', null_padding = true, strict_mode = false,
    nullstr = '\x01\x02\x03', filename = true, parallel = false,
    store_rejects = true, rejects_table = 'vote_rejects', rejects_scan = 'vote_reject_scans');

-- record numbers in file order: insertion order is preserved, so a record's number is its
-- distance from the file's first row (0 = the header); no sort needed
create or replace temp table vote_records as
with firsts as (select path, min(rowid) as first_row from vote_lines group by path),
lists as (select path, rowid as row_id, list_value(*columns('^c[0-9]+$')) as fields from vote_lines)
select o.file_rank, v.row_id - f.first_row as record_number,
    len(list_filter(v.fields, x -> x is not null)) as n_fields, v.fields
from lists v join firsts f using (path) join file_order o on o.path = v.path;
drop table vote_lines;

-- headers matched case-insensitively after trimming; a repeated name keeps its first place
create or replace temp table vote_headers as
select file_rank, n_fields,
    list_position(names, 'response_id') as p_response_id, list_position(names, 'submitted_at') as p_submitted_at,
    list_position(names, 'language') as p_language, list_position(names, 'country') as p_country,
    list_position(names, 'library_type') as p_library_type,
    list_position(names, 'years_experience') as p_years_experience,
    list_position(names, 'age_group') as p_age_group, list_position(names, 'respondent_email') as p_email,
    list_position(names, 'is_test') as p_is_test,
    list_position(names, 'q1') as p_q1, list_position(names, 'q2') as p_q2, list_position(names, 'q3') as p_q3,
    list_position(names, 'q4') as p_q4, list_position(names, 'q5') as p_q5, list_position(names, 'q6') as p_q6,
    not list_has_all(names, ['response_id', 'submitted_at', 'language', 'country', 'library_type',
        'years_experience', 'age_group', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6']) as missing_column
from (select file_rank, n_fields, list_transform(fields, x -> lower(trimws(x))) as names
      from vote_records where record_number = 0);

-- every data record's values (trimmed) and its reason code, the first rule that applies
create or replace temp table vote_checked as
with v as materialized (
    select r.file_rank, r.record_number, h.missing_column, r.n_fields <> h.n_fields as malformed,
        trimws(coalesce(r.fields[h.p_response_id], '')) as response_id,
        trimws(coalesce(r.fields[h.p_submitted_at], '')) as submitted_at_text,
        trimws(coalesce(r.fields[h.p_language], '')) as language,
        upper(trimws(coalesce(r.fields[h.p_country], ''))) as country,
        trimws(coalesce(r.fields[h.p_library_type], '')) as library_type,
        trimws(coalesce(r.fields[h.p_years_experience], '')) as years_text,
        trimws(coalesce(r.fields[h.p_age_group], '')) as age_group,
        trimws(coalesce(r.fields[h.p_email], '')) as email,
        lower(trimws(coalesce(r.fields[h.p_is_test], ''))) as is_test,
        coalesce(r.fields[h.p_q1], '') as q1_text, coalesce(r.fields[h.p_q2], '') as q2_text,
        coalesce(r.fields[h.p_q3], '') as q3_text, coalesce(r.fields[h.p_q4], '') as q4_text,
        coalesce(r.fields[h.p_q5], '') as q5_text, coalesce(r.fields[h.p_q6], '') as q6_text
    from vote_records r join vote_headers h using (file_rank)
    where r.record_number > 0
),
p as materialized (
    select *, is_plain(q1_text) as p1, is_plain(q2_text) as p2, is_plain(q3_text) as p3, is_plain(q4_text) as p4,
        is_plain(q5_text) as p5, is_plain(q6_text) as p6
    from v
),
t as (
    select p.*, ts_utc(ts_parts(submitted_at_text)) as submitted_at, k.country_code is not null as country_known,
        choices_norm(q1_text, p1) as q1, choices_norm(q2_text, p2) as q2, choices_norm(q3_text, p3) as q3,
        choices_norm(q4_text, p4) as q4, choices_norm(q5_text, p5) as q5, choices_norm(q6_text, p6) as q6
    from p left join ref_countries k on k.country_code = p.country
)
select file_rank, record_number, response_id, submitted_at, language, country, library_type,
    case when regexp_full_match(years_text, '[0-9]{1,9}') then cast(years_text as integer) end as years_experience,
    age_group, email, q1, q2, q3, q4, q5, q6,
    case
        when missing_column then 'missing_column'
        when malformed then 'malformed_row'
        when response_id = '' or submitted_at_text = '' or language = '' or country = ''
            or library_type = '' or years_text = '' or age_group = '' then 'missing_required'
        when is_test = 'true' then 'test_submission'
        when submitted_at is null then 'invalid_timestamp'
        when submitted_at < timestamp '2017-08-21 00:00:00' or submitted_at >= timestamp '2017-10-01 00:00:00'
            then 'outside_voting_window'
        when language not in ('ar', 'zh', 'en', 'fr', 'de', 'ru', 'es')
            or not country_known
            or library_type not in ('national', 'academic', 'public', 'school', 'special', 'other')
            or age_group not in ('under_25', '25_34', '35_44', '45_54', '55_64', '65_plus')
            or is_test not in ('', 'false') then 'unknown_code'
        when not (regexp_full_match(years_text, '[0-9]+') and coalesce(try_cast(years_text as hugeint) <= 70, false))
            then 'invalid_experience'
        when not (choices_ok(q1_text, p1, 'Q1') and choices_ok(q2_text, p2, 'Q2') and choices_ok(q3_text, p3, 'Q3')
              and choices_ok(q4_text, p4, 'Q4') and choices_ok(q5_text, p5, 'Q5') and choices_ok(q6_text, p6, 'Q6'))
            then 'invalid_choice'
    end as reason
from t;
drop table vote_records;

-- versions of one response_id among the valid records: the latest submitted_at wins (ties:
-- later file, later record); copies identical to the winner in every contract column are
-- duplicates after the first; every other version is superseded
create or replace temp table vote_special as
with valid as (
    select * from vote_checked where reason is null
),
multi as (
    select response_id from valid group by response_id having count(*) > 1
),
w as (
    select file_rank, record_number, response_id,
        struct_pack(submitted_at, language, country, library_type, years_experience, age_group,
            email := lower(email), q1, q2, q3, q4, q5, q6) as version,
        first_value(struct_pack(submitted_at, language, country, library_type, years_experience, age_group,
            email := lower(email), q1, q2, q3, q4, q5, q6))
            over (partition by response_id order by submitted_at desc, file_rank desc, record_number desc) as winner
    from valid semi join multi using (response_id)
)
select file_rank, record_number,
    case when version is distinct from winner then 'superseded' else 'duplicate' end as outcome
from (select *, row_number() over (partition by response_id, version order by file_rank, record_number) as copy_rank
      from w)
where version is distinct from winner or copy_rank > 1;

-- the raw layer: valid records with their outcome (the e-mail only as a salted hash),
-- and one row per quarantined record
create or replace table raw_votes as
select o.file_name, c.record_number, c.response_id, c.submitted_at, c.language, c.country, c.library_type,
    c.years_experience, c.age_group,
    case when c.email <> '' then sha256(getvariable('pii_salt') || lower(c.email)) end as respondent_key,
    c.q1, c.q2, c.q3, c.q4, c.q5, c.q6,
    coalesce(s.outcome, 'accepted') as outcome
from vote_checked c
join file_order o on o.source = 'votes' and o.file_rank = c.file_rank
left join vote_special s on s.file_rank = c.file_rank and s.record_number = c.record_number
where c.reason is null;

create or replace table raw_vote_quarantine as
select o.file_name, c.record_number, c.reason, nullif(c.response_id, '') as response_id
from vote_checked c join file_order o on o.source = 'votes' and o.file_rank = c.file_rank
where c.reason is not null
union all
-- records DuckDB could not parse at all (a file missing a column quarantines them too)
select o.file_name, null as record_number,
    case when h.missing_column then 'missing_column' else 'malformed_row' end, null
from (select distinct s.file_path, e.line from vote_rejects e
      join vote_reject_scans s on s.scan_id = e.scan_id and s.file_id = e.file_id) j
join file_order o on o.path = j.file_path
join vote_headers h on h.file_rank = o.file_rank
union all
-- files that are not valid UTF-8: every non-blank line after the header
select o.file_name, null, 'malformed_row', null
from file_order o, range(greatest(o.nonblank_lines - 1, 0))
where o.source = 'votes' and not o.is_utf8;
drop table vote_checked;
drop table vote_special;

-- ---- workshop events ---------------------------------------------------------------------

-- physical lines (LF; a CR before it is part of the line ending); blank lines are not records
create or replace temp table ws_lines as
select o.file_name, o.file_rank, l.line_number, l.line
from (
    select filename as path, generate_subscripts(lines, 1) as line_number, unnest(lines) as line
    from (select filename, string_split(content, chr(10)) as lines from read_text(getvariable('ws_files')))
) l join file_order o on o.path = l.path
where trimws(l.line) <> '';

-- each line parsed once: every contract field as a JSON value (null when absent)
create or replace temp table ws_parsed as
select file_name, file_rank, line_number, is_object,
    case when is_object then json_transform(line, '{"event_id": "JSON", "event_type": "JSON", "workshop_id": "JSON",
        "occurred_at": "JSON", "kind": "JSON", "title": "JSON", "held_on": "JSON", "country": "JSON", "city": "JSON",
        "language": "JSON", "participant_ref": "JSON", "library_type": "JSON", "years_experience": "JSON",
        "age_group": "JSON", "question": "JSON", "rank": "JSON", "option": "JSON",
        "reported_participants": "JSON"}') end as j
from (select *, starts_with(ltrim(line, ' ' || chr(9) || chr(13)), '{') and json_valid(line) as is_object
      from ws_lines);
drop table ws_lines;

-- JSON values as json_transform returns them (null when absent or null): the type from the
-- first character, so that no value is parsed twice
create or replace temp macro jtype(x) as
    case when x is null then null when starts_with(x, '"') then 'VARCHAR' when x in ('true', 'false') then 'BOOLEAN'
         when starts_with(x, '{') then 'OBJECT' when starts_with(x, '[') then 'ARRAY' else 'NUMBER' end;
-- a string's trimmed value (null for other types); unescaped only when it holds a backslash
create or replace temp macro jstr(x) as
    case when starts_with(x, '"') then trimws(
        case when contains(x, chr(92)) then json_extract_string(x, '$') else substr(x, 2, length(x) - 2) end) end;
create or replace temp macro jnum(x) as case when jtype(x) = 'NUMBER' then try_cast(x as double) end;
-- absent, null or a blank string
create or replace temp macro jblank(x) as x is null or (starts_with(x, '"') and jstr(x) = '');
create or replace temp macro whole_in(n, lo, hi) as
    coalesce(isfinite(n) and n = floor(n) and n between lo and hi, false);

create or replace temp table ws_checked as
with f as (
    select file_name, file_rank, line_number, is_object,
        -- ids and free text: a non-string value counts as blank
        jstr(j.event_id) as event_id, jstr(j.workshop_id) as workshop_id,
        jstr(j.title) as title, jstr(j.city) as city, jstr(j.participant_ref) as participant_ref,
        jstr(j.event_type) as event_type, jblank(j.event_type) as no_event_type,
        jstr(j.occurred_at) as occurred_at_text, jblank(j.occurred_at) as no_occurred_at,
        jstr(j.kind) as kind, jblank(j.kind) as no_kind,
        jstr(j.held_on) as held_on_text, jblank(j.held_on) as no_held_on,
        upper(jstr(j.country)) as country, jblank(j.country) as no_country,
        jstr(j.language) as language, jblank(j.language) as no_language,
        jstr(j.library_type) as library_type, jblank(j.library_type) as no_library_type,
        jnum(j.years_experience) as years_n, jblank(j.years_experience) as no_years,
        jstr(j.age_group) as age_group, jblank(j.age_group) as no_age_group,
        jstr(j.question) as question, jblank(j.question) as no_question,
        jnum(j.rank) as rank_n, jblank(j.rank) as no_rank,
        jstr(j.option) as option_code, jblank(j.option) as no_option,
        jnum(j.reported_participants) as reported_n, jblank(j.reported_participants) as no_reported
    from ws_parsed
),
g as (
    select f.*, ts_utc(ts_parts(occurred_at_text)) as occurred_at,
        case when regexp_full_match(held_on_text, '[0-9]{4}-[0-9]{2}-[0-9]{2}') then try_cast(held_on_text as date)
        end as held_on,
        k.country_code is not null as country_known, o.option_code is not null as option_known
    from f
    left join ref_countries k on k.country_code = f.country
    left join ref_options o on o.question_code = f.question and o.option_code = f.option_code
)
select file_name, file_rank, line_number, event_id, event_type, workshop_id, occurred_at,
    kind, title, held_on, country, city, language, participant_ref, library_type,
    cast(years_n as integer) as years_experience, age_group, question, cast(rank_n as integer) as rank,
    option_code, cast(reported_n as bigint) as reported_participants,
    case
        when not is_object then 'malformed_json'
        when coalesce(event_id, '') = '' or coalesce(workshop_id, '') = '' or no_event_type or no_occurred_at
            then 'missing_required'
        when event_type is null or event_type not in ('workshop_registered', 'participant_checked_in',
            'answer_ranked', 'workshop_closed') then 'unknown_event_type'
        when (event_type = 'workshop_registered' and (no_kind or coalesce(title, '') = '' or no_held_on
                or no_country or coalesce(city, '') = '' or no_language))
          or (event_type = 'participant_checked_in' and (coalesce(participant_ref, '') = '' or no_country
                or no_library_type or no_years or no_age_group))
          or (event_type = 'answer_ranked' and (no_question or no_rank or no_option))
          or (event_type = 'workshop_closed' and no_reported) then 'missing_required'
        when occurred_at is null then 'invalid_timestamp'
        when (event_type = 'workshop_registered' and (not country_known
                or coalesce(kind not in ('kickoff', 'regional', 'professional_unit', 'national', 'self_facilitated'), true)
                or coalesce(language not in ('ar', 'zh', 'en', 'fr', 'de', 'ru', 'es'), true)))
          or (event_type = 'participant_checked_in' and (not country_known
                or coalesce(library_type not in ('national', 'academic', 'public', 'school', 'special', 'other'), true)
                or coalesce(age_group not in ('under_25', '25_34', '35_44', '45_54', '55_64', '65_plus'), true)))
          or (event_type = 'answer_ranked' and coalesce(question not in ('Q1', 'Q2', 'Q3', 'Q4', 'Q5', 'Q6'), true))
            then 'unknown_code'
        when event_type = 'participant_checked_in' and not whole_in(years_n, 0, 70) then 'invalid_experience'
        when (event_type = 'answer_ranked' and (not option_known or not whole_in(rank_n, 1, 5)))
          or (event_type = 'workshop_closed' and not whole_in(reported_n, 0, 2147483647)) then 'invalid_choice'
        when event_type = 'workshop_registered'
            and not coalesce(held_on between date '2017-01-01' and date '2017-12-31', false) then 'invalid_date'
    end as reason
from g;
drop table ws_parsed;

-- outcomes of the valid events, in the contract's order: duplicate (a repeated event_id:
-- the first delivery wins; a second registration, closure or check-in of the same
-- participant: the earliest occurred_at wins), superseded (a replaced answer: the latest
-- occurred_at wins), incomplete_workshop (the workshop never registered or never closed).
-- Almost every event is accepted: hash aggregates find the few groups with competitors.
create or replace table raw_workshop_events as
with valid as (
    select *, (file_rank << 32) + line_number as ord from ws_checked where reason is null
),
repeated as (
    select event_id, min(ord) as first_ord from valid group by event_id having count(*) > 1
),
survivors as (
    select v.*, r.first_ord is not null and v.ord <> r.first_ord as repeat_loser
    from valid v left join repeated r using (event_id)
),
earliest as (
    select workshop_id, event_type, coalesce(participant_ref, '') as participant_ref,
        min({'t': occurred_at, 'o': ord}).o as win
    from survivors where not repeat_loser and event_type <> 'answer_ranked'
    group by all having count(*) > 1
),
latest as (
    select workshop_id, question, rank, max({'t': occurred_at, 'o': ord}).o as win
    from survivors where not repeat_loser and event_type = 'answer_ranked'
    group by all having count(*) > 1
),
counting as (
    select workshop_id from survivors
    where not repeat_loser and event_type in ('workshop_registered', 'workshop_closed')
    group by workshop_id having count(distinct event_type) = 2
)
select s.file_name, s.line_number, s.event_id, s.event_type, s.workshop_id, s.occurred_at, s.kind, s.title,
    s.held_on, s.country, s.city, s.language, s.participant_ref, s.library_type, s.years_experience, s.age_group,
    s.question, s.rank, s.option_code, s.reported_participants,
    case when s.repeat_loser then 'duplicate'
         when l.win is not null and s.ord <> l.win then 'superseded'
         when e.win is not null and s.ord <> e.win then 'duplicate'
         when c.workshop_id is null then 'incomplete_workshop'
         else 'accepted' end as outcome
from survivors s
-- equality joins only (hash joins): `earliest` holds no answers, and only answers have a
-- question and a rank
left join earliest e on e.workshop_id = s.workshop_id and e.event_type = s.event_type
    and e.participant_ref = coalesce(s.participant_ref, '')
left join latest l on l.workshop_id = s.workshop_id and l.question = s.question and l.rank = s.rank
left join counting c on c.workshop_id = s.workshop_id;

create or replace table raw_workshop_quarantine as
select file_name, line_number, reason, event_id, workshop_id from ws_checked where reason is not null
union all
-- files that are not valid UTF-8: every non-blank line
select o.file_name, null, 'malformed_json', null, null
from file_order o, range(o.nonblank_lines)
where o.source = 'workshops' and not o.is_utf8;
drop table ws_checked;

-- @section marts

create or replace temp macro experience_band(y) as
    case when y < 5 then '0_4' when y < 10 then '5_9' when y < 20 then '10_19' when y < 30 then '20_29'
         else '30_plus' end;

create or replace table fct_votes as
select row_number() over () as vote_key, v.submitted_at, cast(v.submitted_at as date) as submitted_on,
    v.language as language_code, v.country as country_code, c.region_code, v.library_type as library_type_code,
    v.age_group as age_group_code, v.years_experience, experience_band(v.years_experience) as experience_band_code,
    v.q1, v.q2, v.q3, v.q4, v.q5, v.q6
from raw_votes v join ref_countries c on c.country_code = v.country
where v.outcome = 'accepted';

create or replace table fct_vote_choices as
select vote_key, 'Q1' as question_code, unnest(string_split(q1, ';')) as option_code from fct_votes where q1 <> ''
union all select vote_key, 'Q2', unnest(string_split(q2, ';')) from fct_votes where q2 <> ''
union all select vote_key, 'Q3', unnest(string_split(q3, ';')) from fct_votes where q3 <> ''
union all select vote_key, 'Q4', unnest(string_split(q4, ';')) from fct_votes where q4 <> ''
union all select vote_key, 'Q5', unnest(string_split(q5, ';')) from fct_votes where q5 <> ''
union all select vote_key, 'Q6', unnest(string_split(q6, ';')) from fct_votes where q6 <> '';

create or replace table fct_workshops as
with reg as (
    select workshop_id, kind, title, held_on, country, city, language
    from raw_workshop_events where outcome = 'accepted' and event_type = 'workshop_registered'
),
closed as (
    select workshop_id, reported_participants
    from raw_workshop_events where outcome = 'accepted' and event_type = 'workshop_closed'
),
checkins as (
    select workshop_id, count(*) as participants
    from raw_workshop_events where outcome = 'accepted' and event_type = 'participant_checked_in'
    group by workshop_id
)
select r.workshop_id, r.kind as workshop_kind_code, r.title, r.held_on, r.country as country_code, c.region_code,
    r.city, r.language as language_code, coalesce(k.participants, 0) as participants,
    cl.reported_participants, coalesce(k.participants, 0) <> cl.reported_participants as participant_count_mismatch
from reg r join closed cl using (workshop_id)
left join checkins k using (workshop_id)
join ref_countries c on c.country_code = r.country;

create or replace table fct_workshop_answers as
select workshop_id, question as question_code, rank, option_code, 6 - rank as borda_points
from raw_workshop_events where outcome = 'accepted' and event_type = 'answer_ranked';

-- one row per participant: every vote and every distinct check-in at a counting workshop
create or replace table fct_participation as
select 'vote' as channel, cast(vote_key as varchar) as participant_key, country_code, region_code,
    library_type_code, age_group_code, years_experience, experience_band_code, null as workshop_id
from fct_votes
union all
select 'workshop', e.workshop_id || '/' || e.participant_ref, e.country, c.region_code, e.library_type,
    e.age_group, e.years_experience,
    experience_band(e.years_experience),
    e.workshop_id
from raw_workshop_events e join ref_countries c on c.country_code = e.country
where e.outcome = 'accepted' and e.event_type = 'participant_checked_in';

create or replace table rpt_headline_figures as
select
    (select count(*) from fct_votes) as votes,
    (select count(*) from fct_workshops) as workshops,
    count(*) filter (where channel = 'workshop') as workshop_participants,
    count(*) as participants,
    sum(years_experience) as library_experience_years,
    count(distinct p.country_code) filter (where c.is_un_member) as un_member_states,
    count(distinct p.country_code) as countries_and_areas,
    count(distinct age_group_code) as age_groups_represented,
    count(distinct library_type_code) as library_types_represented,
    count(distinct p.region_code) as regions_represented
from fct_participation p join ref_countries c using (country_code);

-- theme rankings: every value of every scope type x every option; votes and shares, and
-- Borda points for the scope types workshops have (global, region, language). The choices
-- are counted once per cell of the five dimensions, then rolled up with one grouping set
-- per scope type.
create or replace temp macro scope_type_of(r, l, a, e, g) as
    case when r = 0 then 'region' when l = 0 then 'library_type' when a = 0 then 'age_group'
         when e = 0 then 'experience_band' when g = 0 then 'language' else 'global' end;
create or replace table fct_theme_rankings as
with scope_values as (
    select 'global' as scope_type, 'all' as scope_value, true as applies_to_workshops
    union all select distinct 'region', region_code, true from ref_countries
    union all select 'library_type', unnest(['national', 'academic', 'public', 'school', 'special', 'other']), false
    union all select 'age_group', unnest(['under_25', '25_34', '35_44', '45_54', '55_64', '65_plus']), false
    union all select 'experience_band', unnest(['0_4', '5_9', '10_19', '20_29', '30_plus']), false
    union all select 'language', unnest(['ar', 'zh', 'en', 'fr', 'de', 'ru', 'es']), true
),
choice_cells as (
    select c.option_code, v.region_code, v.library_type_code, v.age_group_code, v.experience_band_code,
        v.language_code, count(*) as n
    from fct_vote_choices c join fct_votes v using (vote_key)
    group by all
),
option_votes as (
    select option_code,
        scope_type_of(grouping(region_code), grouping(library_type_code), grouping(age_group_code),
            grouping(experience_band_code), grouping(language_code)) as scope_type,
        coalesce(region_code, library_type_code, age_group_code, experience_band_code, language_code, 'all')
            as scope_value,
        sum(n) as votes
    from choice_cells
    group by grouping sets ((option_code), (option_code, region_code), (option_code, library_type_code),
        (option_code, age_group_code), (option_code, experience_band_code), (option_code, language_code))
),
-- a vote answered a question when it chose at least one of its options
answering as (
    select scope_type, scope_value, unnest(['Q1', 'Q2', 'Q3', 'Q4', 'Q5', 'Q6']) as question_code,
        unnest(answered) as votes_answering
    from (
        select scope_type_of(grouping(region_code), grouping(library_type_code), grouping(age_group_code),
                grouping(experience_band_code), grouping(language_code)) as scope_type,
            coalesce(region_code, library_type_code, age_group_code, experience_band_code, language_code, 'all')
                as scope_value,
            [count(*) filter (where q1 <> ''), count(*) filter (where q2 <> ''), count(*) filter (where q3 <> ''),
             count(*) filter (where q4 <> ''), count(*) filter (where q5 <> ''), count(*) filter (where q6 <> '')]
                as answered
        from fct_votes
        group by grouping sets ((), (region_code), (library_type_code), (age_group_code), (experience_band_code),
            (language_code))
    )
),
option_points as (
    select a.option_code,
        case when grouping(w.region_code) = 0 then 'region' when grouping(w.language_code) = 0 then 'language'
             else 'global' end as scope_type,
        coalesce(w.region_code, w.language_code, 'all') as scope_value,
        sum(a.borda_points) as points
    from fct_workshop_answers a join fct_workshops w using (workshop_id)
    group by grouping sets ((a.option_code), (a.option_code, w.region_code), (a.option_code, w.language_code))
),
tallied as (
    select g.scope_type, g.scope_value, o.question_code, o.option_code, g.applies_to_workshops,
        coalesce(v.votes, 0) as votes, coalesce(a.votes_answering, 0) as votes_answering,
        case when g.applies_to_workshops then coalesce(p.points, 0) end as workshop_points
    from scope_values g cross join ref_options o
    left join option_votes v on v.scope_type = g.scope_type and v.scope_value = g.scope_value
        and v.option_code = o.option_code
    left join answering a on a.scope_type = g.scope_type and a.scope_value = g.scope_value
        and a.question_code = o.question_code
    left join option_points p on p.scope_type = g.scope_type and p.scope_value = g.scope_value
        and p.option_code = o.option_code
)
select scope_type, scope_value, question_code, option_code, votes,
    case when votes_answering = 0 then 0.0 else votes / votes_answering end as vote_share,
    row_number() over (partition by scope_type, scope_value, question_code order by votes desc, option_code)
        as vote_rank,
    workshop_points,
    case when applies_to_workshops then row_number() over (
        partition by scope_type, scope_value, question_code order by workshop_points desc, option_code) end
        as workshop_rank
from tallied;

create or replace table rpt_quarantine_summary as
select 'votes' as source, outcome, count(*) as records from (
    select outcome from raw_votes where outcome <> 'accepted' union all select reason from raw_vote_quarantine)
group by all
union all
select 'workshops', outcome, count(*) from (
    select outcome from raw_workshop_events where outcome <> 'accepted'
    union all select reason from raw_workshop_quarantine)
group by all;

-- @section export

copy (select * from rpt_headline_figures) to (getvariable('out_dir') || '/headline_figures.parquet') (format parquet);
copy (
    -- outside the global scope, counts below the minimum cell size (and what derives from them) are hidden
    select scope_type, scope_value, question_code, option_code,
        case when hide then null else votes end as votes, case when hide then null else vote_share end as vote_share,
        case when hide then null else vote_rank end as vote_rank, workshop_points, workshop_rank, hide as suppressed
    from (select *, scope_type <> 'global' and votes < getvariable('min_cell') as hide from fct_theme_rankings)
) to (getvariable('out_dir') || '/theme_rankings.parquet') (format parquet);
copy (select * exclude (q1, q2, q3, q4, q5, q6) from fct_votes) to (getvariable('out_dir') || '/votes.parquet') (format parquet);
copy fct_vote_choices to (getvariable('out_dir') || '/vote_choices.parquet') (format parquet);
copy fct_participation to (getvariable('out_dir') || '/participation.parquet') (format parquet);
copy fct_workshops to (getvariable('out_dir') || '/workshops.parquet') (format parquet);
copy fct_workshop_answers to (getvariable('out_dir') || '/workshop_answers.parquet') (format parquet);
copy rpt_quarantine_summary to (getvariable('out_dir') || '/quarantine_summary.parquet') (format parquet);

-- @section result

select 'figure' as kind, unnest(map_keys(m)) as name, unnest(map_values(m)) as value
from (select map(['votes', 'workshops', 'workshop_participants', 'participants', 'library_experience_years',
        'un_member_states', 'countries_and_areas', 'age_groups_represented', 'library_types_represented',
        'regions_represented'],
    [votes, workshops, workshop_participants, participants, library_experience_years, un_member_states,
     countries_and_areas, age_groups_represented, library_types_represented, regions_represented]::bigint[]) as m
      from rpt_headline_figures)
union all
select 'votes', outcome, count(*) from (select outcome from raw_votes union all select reason from raw_vote_quarantine)
group by all
union all
select 'workshops', outcome, count(*) from (
    select outcome from raw_workshop_events union all select reason from raw_workshop_quarantine)
group by all
union all
select 'votes_by_option', option_code, votes from fct_theme_rankings where scope_type = 'global'
union all
select 'workshop_borda_points', option_code, workshop_points from fct_theme_rankings where scope_type = 'global';
