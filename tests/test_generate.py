"""The reference landing-zone generator: determinism, file formats, and an answer key that
agrees with the bytes written.

The answer key comes from the generation plan. These tests hold it against the written
files: record counts parsed with the csv module and DuckDB, the per-record listing of
non-accepted records (``expected_outcomes.csv``), and figures recomputed from the records
the listing leaves accepted. A generator that writes something other than it planned fails here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import duckdb
import pytest

from orchestration.generate import generate_landing_zone
from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT

VOTE_OUTCOMES = ["accepted", "malformed_row", "missing_required", "test_submission", "invalid_timestamp",
                 "outside_voting_window", "unknown_code", "invalid_experience", "invalid_choice",
                 "missing_column", "duplicate", "superseded"]
WORKSHOP_OUTCOMES = ["accepted", "malformed_json", "missing_required", "unknown_event_type",
                     "invalid_timestamp", "unknown_code", "invalid_experience", "invalid_choice",
                     "invalid_date", "duplicate", "superseded", "incomplete_workshop"]
REQUIRED = ["response_id", "submitted_at", "language", "country", "library_type", "years_experience",
            "age_group", "q1", "q2", "q3", "q4", "q5", "q6"]
REQUIRED_VALUES = REQUIRED[:7]
EVENT_TYPES = {"workshop_registered", "participant_checked_in", "answer_ranked", "workshop_closed"}


def _reference_figures() -> dict:
    return json.loads((PROJECT_ROOT / "orchestration" / "reference" / "reference_figures.json").read_text())


def _countries() -> dict[str, dict]:
    with open(DBT_PROJECT_DIR / "seeds" / "countries.csv", newline="", encoding="utf-8") as f:
        return {r["country_code"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def zone1(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zone1")
    generate_landing_zone(out, scale=1.0, seed=2017)
    return out


@pytest.fixture(scope="module")
def zone_small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zone_small")
    generate_landing_zone(out, scale=0.02, seed=2017)
    return out


@pytest.fixture(scope="module")
def zone_parts(tmp_path_factory) -> Path:
    """Small per-file limits, so that exports and monthly logs are split into parts."""
    from orchestration.generate import votes, workshops

    out = tmp_path_factory.mktemp("zone_parts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(votes, "MAX_ROWS_PER_FILE", 700)
        mp.setattr(workshops, "MAX_LINES_PER_FILE", 400)
        generate_landing_zone(out, scale=0.2, seed=11)
    return out


def _key(out: Path) -> dict:
    return json.loads((out / "expected.json").read_text(encoding="utf-8"))


def _listing(out: Path) -> dict[tuple[str, int], str]:
    with open(out / "expected_outcomes.csv", newline="", encoding="utf-8") as f:
        return {(r["file_name"], int(r["record"])): r["outcome"] for r in csv.DictReader(f)}


def _vote_files(out: Path):
    """(name, header, records) of every votes file, parsed with the csv module."""
    for path in sorted((out / "landing" / "votes").glob("*.csv")):
        text = path.read_bytes().decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        yield f"votes/{path.name}", [h.strip().lower() for h in rows[0]], rows[1:]


def _workshop_lines(out: Path):
    """(name, line number, text) of every line of every workshops file."""
    for path in sorted((out / "landing" / "workshops").glob("*.jsonl")):
        lines = path.read_bytes().decode("utf-8").split("\n")
        assert lines[-1] == "", f"{path.name} does not end with a line break"
        for number, line in enumerate(lines[:-1], 1):
            yield f"workshops/{path.name}", number, line


def _json_object(line: str):
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


# --- determinism -------------------------------------------------------------------------------

def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_scale_and_seed_give_identical_bytes(zone1, tmp_path):
    generate_landing_zone(tmp_path, scale=1.0, seed=2017)
    first, second = _tree(zone1), _tree(tmp_path)
    assert sorted(first) == sorted(second)
    assert len([n for n in first if n.startswith("landing/")]) >= 10
    assert [n for n in first if first[n] != second[n]] == []


def test_another_seed_gives_other_data(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_landing_zone(a, scale=0.05, seed=1)
    generate_landing_zone(b, scale=0.05, seed=2)
    assert _tree(a)["landing/votes/export_2017-09-03.csv"] != _tree(b)["landing/votes/export_2017-09-03.csv"]


def test_refuses_to_mix_with_existing_landing_files(zone_small, tmp_path):
    generate_landing_zone(tmp_path, scale=0.01, seed=3)
    with pytest.raises(FileExistsError):
        generate_landing_zone(tmp_path, scale=0.02, seed=2017)
    generate_landing_zone(tmp_path, scale=0.02, seed=2017, overwrite=True)
    assert _tree(tmp_path) == _tree(zone_small)


# --- the answer key ----------------------------------------------------------------------------

def test_scale_1_reproduces_the_published_figures(zone1):
    key = _key(zone1)
    published = _reference_figures()
    numeric = {k: v for k, v in published.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    assert key["figures"] == numeric
    for question, option in published["top_option_by_votes"].items():
        assert key["top_option_by_votes"][question] == option


def test_published_top_options_are_clearly_ahead(zone1):
    key = _key(zone1)
    for question in _reference_figures()["top_option_by_votes"]:
        first, second = sorted(key["votes_by_option"][question].values(), reverse=True)[:2]
        assert first - second >= 0.10 * key["votes_answering"][question], question


def test_regional_rankings_differ_from_the_global_one(zone1):
    key = _key(zone1)
    differing = {q for region in key["top_option_by_votes_by_region"].values()
                 for q, top in region.items() if top != key["top_option_by_votes"][q]}
    assert len(differing) >= 2


@pytest.mark.parametrize("zone_name", ["zone1", "zone_small", "zone_parts"])
def test_answer_key_is_consistent(zone_name, request):
    out = request.getfixturevalue(zone_name)
    key = _key(out)
    fig = key["figures"]
    assert fig["participants"] == fig["votes"] + fig["workshop_participants"]
    assert list(key["outcomes"]["votes"]) == VOTE_OUTCOMES
    assert list(key["outcomes"]["workshops"]) == WORKSHOP_OUTCOMES
    assert key["outcomes"]["votes"]["accepted"] == fig["votes"]
    for source, outcomes in key["outcomes"].items():
        files = {n: f for n, f in key["files"].items() if n.startswith(source + "/")}
        summed = Counter()
        for name, info in files.items():
            assert sum(info["outcomes"].values()) == info["records"], name
            summed.update(info["outcomes"])
        assert {k: v for k, v in outcomes.items() if v} == dict(summed)
        assert key["records"][source] == sum(f["records"] for f in files.values())
    # the listing details exactly the non-accepted counts of every file
    per_file = defaultdict(Counter)
    for (name, _), outcome in _listing(out).items():
        per_file[name][outcome] += 1
    for name, info in key["files"].items():
        expected = {k: v for k, v in info["outcomes"].items() if k != "accepted"}
        assert dict(per_file.get(name, {})) == expected, name
    assert set(per_file) <= set(key["files"])


def test_every_reason_code_at_least_ten_times_at_scale_1(zone1):
    key = _key(zone1)
    for source, outcomes in key["outcomes"].items():
        for outcome, count in outcomes.items():
            assert count >= 10, (source, outcome, count)


def test_fractional_scale_is_exact_and_covers_every_code(zone_small):
    key = _key(zone_small)
    assert key["figures"]["votes"] == round(21772 * 0.02)
    assert key["figures"]["workshops"] == round(185 * 0.02)
    assert key["figures"]["workshop_participants"] == round(9291 * 0.02)
    for source, outcomes in key["outcomes"].items():
        assert all(n >= 1 for n in outcomes.values()), (source, outcomes)


# --- files against the key -------------------------------------------------------------------

@pytest.mark.parametrize("zone_name", ["zone1", "zone_small", "zone_parts"])
def test_vote_files_parse_and_match_the_key(zone_name, request):
    out = request.getfixturevalue(zone_name)
    key = _key(out)
    listing = _listing(out)
    con = duckdb.connect()
    missing_files = 0
    for name, header, records in _vote_files(out):
        info = key["files"][name]
        assert len(records) == info["records"], name
        missing = [c for c in REQUIRED if c not in header]
        assert missing == info["missing_columns"], name
        missing_files += bool(missing)
        for number, row in enumerate(records, 1):
            outcome = listing.get((name, number), "accepted")
            if missing:
                assert outcome == "missing_column"
                continue
            assert (outcome == "malformed_row") == (len(row) != len(header)), (name, number)
            if len(row) != len(header):
                continue
            values = dict(zip(header, (v.strip() for v in row)))
            blank = any(values[c] == "" for c in REQUIRED_VALUES)
            assert (outcome == "missing_required") == blank, (name, number)
            is_test = values.get("is_test", "").lower() == "true"
            if not blank:
                assert (outcome == "test_submission") == is_test, (name, number)
        # DuckDB reads every well-formed record (BOM, CRLF, quoted line breaks and all)
        rows = con.execute(
            "select count(*) from read_csv(?, header = true, all_varchar = true, delim = ',', quote = '\"', "
            "escape = '\"', ignore_errors = true, null_padding = false)",
            [str(out / "landing" / name)]).fetchone()[0]
        assert rows == info["records"] - info["outcomes"].get("malformed_row", 0), name
    assert missing_files == 1
    if zone_name == "zone_parts":
        assert any(re.search(r"_\d\d\.csv$", n) for n in key["files"])
        assert any(re.search(r"_\d\d\.jsonl$", n) for n in key["files"])


@pytest.mark.parametrize("zone_name", ["zone1", "zone_small", "zone_parts"])
def test_workshop_lines_parse_and_match_the_key(zone_name, request):
    out = request.getfixturevalue(zone_name)
    key = _key(out)
    listing = _listing(out)
    records = Counter()
    for name, number, line in _workshop_lines(out):
        outcome = listing.get((name, number), "accepted")
        if line == "":
            assert (name, number) not in listing
            continue
        records[name] += 1
        obj = _json_object(line)
        assert (outcome == "malformed_json") == (obj is None), (name, number, line)
        if obj is not None and outcome == "unknown_event_type":
            assert obj.get("event_type") not in EVENT_TYPES
        if outcome in ("accepted", "duplicate", "superseded", "incomplete_workshop"):
            assert obj["event_type"] in EVENT_TYPES
    assert dict(records) == {n: f["records"] for n, f in key["files"].items() if n.startswith("workshops/")}


@pytest.mark.parametrize("zone_name", ["zone1", "zone_small", "zone_parts"])
def test_accepted_records_reproduce_the_figures(zone_name, request):
    """Figures recomputed from the written records the listing leaves accepted."""
    out = request.getfixturevalue(zone_name)
    key = _key(out)
    listing = _listing(out)
    countries = _countries()
    vote_ids, years, seen = [], 0, set()
    ages, libs = set(), set()
    option_votes = defaultdict(Counter)
    for name, header, records in _vote_files(out):
        for number, row in enumerate(records, 1):
            if (name, number) in listing:
                continue
            v = dict(zip(header, (x.strip() for x in row)))
            vote_ids.append(v["response_id"])
            years += int(v["years_experience"])
            seen.add(v["country"].upper())
            ages.add(v["age_group"])
            libs.add(v["library_type"])
            for i in range(1, 7):
                option_votes[f"Q{i}"].update(x.strip() for x in v[f"q{i}"].split(";") if x.strip())
    assert len(vote_ids) == len(set(vote_ids)) == key["figures"]["votes"]

    registered, closed, checkins = set(), set(), 0
    borda = defaultdict(Counter)
    for name, number, line in _workshop_lines(out):
        if line == "" or (name, number) in listing:
            continue
        e = json.loads(line)
        if e["event_type"] == "workshop_registered":
            registered.add(e["workshop_id"])
        elif e["event_type"] == "workshop_closed":
            closed.add(e["workshop_id"])
        elif e["event_type"] == "participant_checked_in":
            checkins += 1
            years += int(e["years_experience"])
            seen.add(e["country"].strip().upper())
            ages.add(e["age_group"])
            libs.add(e["library_type"])
        else:
            borda[e["question"]][e["option"]] += 6 - int(e["rank"])
    assert registered == closed
    fig = key["figures"]
    assert len(registered) == fig["workshops"]
    assert checkins == fig["workshop_participants"]
    assert years == fig["library_experience_years"]
    assert len(seen) == fig["countries_and_areas"]
    assert sum(countries[c]["is_un_member"] == "true" for c in seen) == fig["un_member_states"]
    assert len({countries[c]["region_code"] for c in seen}) == fig["regions_represented"]
    assert len(ages) == fig["age_groups_represented"]
    assert len(libs) == fig["library_types_represented"]
    for q, counts in option_votes.items():
        assert {o: counts.get(o, 0) for o in key["votes_by_option"][q]} == key["votes_by_option"][q]
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        assert key["top_option_by_votes"][q] == top
    for q, points in borda.items():
        assert {o: points.get(o, 0) for o in key["workshop_borda_points"][q]} == key["workshop_borda_points"][q]


# Necessary conditions only: a listed reason must be visible in the record. (The full
# rules live in ingestion; the end-to-end test compares the two.)
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")
CODES = {
    "language": {"ar", "zh", "en", "fr", "de", "ru", "es"},
    "library_type": {"national", "academic", "public", "school", "special", "other"},
    "age_group": {"under_25", "25_34", "35_44", "45_54", "55_64", "65_plus"},
    "kind": {"kickoff", "regional", "professional_unit", "national", "self_facilitated"},
    "question": {f"Q{i}" for i in range(1, 7)},
}


def _instant(text: str):
    if not TIMESTAMP.match(text):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _whole(x, lo, hi) -> bool:
    return (isinstance(x, int | float) and not isinstance(x, bool) and float(x).is_integer()
            and lo <= x <= hi)


def test_listed_reasons_are_visible_in_the_records(zone1):
    listing = _listing(zone1)
    countries = _countries()
    start, end = dt.datetime(2017, 8, 21, tzinfo=dt.UTC), dt.datetime(2017, 10, 1, tzinfo=dt.UTC)
    seen = Counter()
    for name, header, records in _vote_files(zone1):
        for number, row in enumerate(records, 1):
            reason = listing.get((name, number))
            if reason in (None, "malformed_row", "missing_column", "missing_required", "test_submission",
                          "duplicate", "superseded"):
                continue
            v = dict(zip(header, (x.strip() for x in row)))
            t = _instant(v["submitted_at"])
            bad_code = (any(v[c] not in CODES[c] for c in ("language", "library_type", "age_group"))
                        or v["country"].upper() not in countries
                        or v.get("is_test", "").lower() not in ("", "true", "false"))
            bad_years = not re.fullmatch(r"[0-9]+", v["years_experience"]) or int(v["years_experience"]) > 70
            items = [[x.strip() for x in v[f"q{i}"].split(";") if x.strip()] for i in range(1, 7)]
            bad_choice = any(len(it) > 5 or len(set(it)) != len(it) or any(not x.startswith(f"Q{i + 1}-")
                             or not re.fullmatch(r"Q\d-(0[1-9]|10)", x) for x in it) for i, it in enumerate(items))
            visible = {
                "invalid_timestamp": t is None,
                "outside_voting_window": t is not None and not start <= t < end,
                "unknown_code": bad_code,
                "invalid_experience": bad_years,
                "invalid_choice": bad_choice,
            }[reason]
            assert visible, (name, number, reason, row)
            seen[reason] += 1
    for name, number, line in _workshop_lines(zone1):
        reason = listing.get((name, number))
        if reason not in ("invalid_timestamp", "unknown_code", "invalid_experience", "invalid_choice",
                          "invalid_date", "missing_required"):
            continue
        e = json.loads(line)
        kind = e.get("event_type")
        fields = {"workshop_registered": ["kind", "title", "held_on", "country", "city", "language"],
                  "participant_checked_in": ["participant_ref", "country", "library_type", "years_experience",
                                             "age_group"],
                  "answer_ranked": ["question", "rank", "option"],
                  "workshop_closed": ["reported_participants"]}.get(kind, [])
        required = ["event_id", "event_type", "workshop_id", "occurred_at", *fields]
        codes = [(c, e[c]) for c in ("kind", "language", "library_type", "age_group", "question") if c in e]
        held = e.get("held_on")
        def missing() -> bool:
            return any(e.get(c) is None or (isinstance(e.get(c), str) and not e[c].strip())
                       or (c in ("event_id", "workshop_id", "title", "city", "participant_ref")
                           and not isinstance(e.get(c), str)) for c in required)

        def unknown() -> bool:
            return (any(not isinstance(x, str) or x.strip() not in CODES[c] for c, x in codes)
                    or ("country" in e and (not isinstance(e["country"], str)
                                            or e["country"].strip().upper() not in countries)))

        def bad_choice() -> bool:
            if kind == "answer_ranked":
                option = str(e["option"])
                return (not _whole(e["rank"], 1, 5) or not option.startswith(str(e["question"]) + "-")
                        or not re.fullmatch(r"Q\d-(0[1-9]|10)", option))
            return not _whole(e["reported_participants"], 0, 10**9)

        visible = {
            "missing_required": missing,
            "invalid_timestamp": lambda: _instant(str(e["occurred_at"]).strip()) is None,
            "unknown_code": unknown,
            "invalid_experience": lambda: not _whole(e["years_experience"], 0, 70),
            "invalid_choice": bad_choice,
            "invalid_date": lambda: not (isinstance(held, str) and re.fullmatch(r"2017-\d{2}-\d{2}", held)
                                         and _is_date(held)),
        }[reason]()
        assert visible, (name, number, reason, line)
        seen["w:" + reason] += 1
    assert all(n >= 10 for n in seen.values()) and len(seen) == 11


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
        return True
    except ValueError:
        return False


# --- the dirt and the realism the issue asks for ----------------------------------------------

def test_vote_files_vary_in_encoding_and_layout(zone1):
    key = _key(zone1)
    votes = {n: f for n, f in key["files"].items() if n.startswith("votes/")}
    raw = {n: (zone1 / "landing" / n).read_bytes() for n in votes}
    assert any(b.startswith(b"\xef\xbb\xbf") for b in raw.values())
    assert any(not b.startswith(b"\xef\xbb\xbf") for b in raw.values())
    assert any(b"\r\n" in b for b in raw.values()) and any(b"\r\n" not in b for b in raw.values())
    headers = {n: h for n, h, _ in _vote_files(zone1)}
    assert len({tuple(h) for h in headers.values()}) >= 4, "column orders should differ"
    assert any("comment" in h for h in headers.values())
    assert any("respondent_email" in h for h in headers.values())
    assert any("respondent_email" not in h for h in headers.values())
    emails = [r[h.index("respondent_email")] for n, h, rows in _vote_files(zone1) if "respondent_email" in h
              for r in rows if len(r) == len(h) and r[h.index("respondent_email")].strip()]
    assert emails and all(re.fullmatch(r"[a-z]+[0-9]+@example\.org", e.strip().lower()) for e in emails)
    # quoted fields holding commas and line breaks
    comments = [r[h.index("comment")] for n, h, rows in _vote_files(zone1) if "comment" in h
                for r in rows if len(r) == len(h)]
    assert any("," in c for c in comments) and any("\n" in c for c in comments)


def test_workshop_events_are_scattered_and_redelivered(zone1):
    key = _key(zone1)
    files_of = defaultdict(set)
    event_files = defaultdict(set)
    for name, _, line in _workshop_lines(zone1):
        obj = _json_object(line) if line else None
        if obj and isinstance(obj.get("workshop_id"), str):
            files_of[obj["workshop_id"]].add(name)
        if obj and isinstance(obj.get("event_id"), str):
            event_files[obj["event_id"]].add(name)
    assert sum(len(f) >= 2 for f in files_of.values()) >= 20
    assert sum(len(f) >= 2 for f in event_files.values()) >= 10     # the same event delivered twice
    assert len(key["participant_count_mismatches"]) >= 1
    assert len(key["incomplete_workshops"]) >= 2
    assert all(key["workshops_by_kind"][k] >= 1 for k in
               ("kickoff", "regional", "professional_unit", "national", "self_facilitated"))


def test_the_consultation_calendar(zone1):
    listing = _listing(zone1)
    registrations = {}
    for name, number, line in _workshop_lines(zone1):
        if line and (name, number) not in listing:
            e = json.loads(line)
            if e["event_type"] == "workshop_registered":
                registrations[(e["kind"], e["country"], e["held_on"])] = e
    assert ("kickoff", "GR", "2017-04-04") in registrations
    for country, day in (("US", "2017-05-03"), ("CM", "2017-05-14"), ("AR", "2017-06-08"),
                         ("SG", "2017-06-28"), ("ES", "2017-07-05")):
        assert ("regional", country, day) in registrations
    assert any(k[0] == "regional" and k[1] == "EG" for k in registrations)
    held = sorted(k[2] for k in registrations)
    assert "2017-04-01" <= held[0] and held[-1] <= "2017-10-31"
    # votes: the launch week is the busiest, all seven languages are used
    key = _key(zone1)
    weekly = [f["outcomes"].get("accepted", 0) for n, f in sorted(key["files"].items())
              if n.startswith("votes/export_")]
    assert weekly[0] == max(weekly)
    languages = {r[h.index("language")].strip() for _, h, rows in _vote_files(zone1) for r in rows
                 if len(r) == len(h)}
    assert {"ar", "zh", "en", "fr", "de", "ru", "es"} <= languages


def test_countries_seed_matches_the_contract_anchors():
    countries = _countries()
    assert len(countries) == 249
    assert sum(r["is_un_member"] == "true" for r in countries.values()) == 193
    assert list(countries) == sorted(countries)
    anchors = {"europe": "FR DE RU GB", "asia_oceania": "CN JP IN AU", "africa": "KE NG ZA GH",
               "middle_east_north_africa": "EG MA SA TN PS", "latin_america_caribbean": "BR MX AR CL",
               "north_america": "US CA"}
    for region, codes in anchors.items():
        assert all(countries[c]["region_code"] == region for c in codes.split())
    assert all(countries[c]["is_un_member"] == "false" for c in "HK MO PS TW PR GL".split())
