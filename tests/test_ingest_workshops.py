"""Ingestion of workshop JSONL files: record rules, precedence, lines, duplicates, workshops
that count, across files and runs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from landing_builders import (
    answer,
    checked_in,
    closed,
    counting_workshop,
    event,
    ingest,
    jsonl_bytes,
    quarantine_row,
    registered,
    workshop_outcomes,
    write_file,
    write_workshops,
)
from orchestration.ingest import reconcile


@pytest.fixture()
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture()
def conn(tmp_path: Path):
    c = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield c
    c.close()


def _drop(obj: dict, *keys: str) -> dict:
    return {k: v for k, v in obj.items() if k not in keys}


# Each case: one line, and the reason it must get. The lines belong to a counting workshop
# (W1) and do not disturb it.
REASON_CASES = [
    ('{"event_id": "X1", "event_type": "participant_checked_in"', "malformed_json"),
    ("[1, 2, 3]", "malformed_json"),
    ('"participant_checked_in"', "malformed_json"),
    ("null", "malformed_json"),
    ("{'event_id': 'E1'}", "malformed_json"),
    ("<html>502 Bad Gateway</html>", "malformed_json"),
    (_drop(checked_in("X", "P9"), "event_id"), "missing_required"),
    ({**checked_in("X", "P9"), "event_id": None}, "missing_required"),
    ({**checked_in("X", "P9"), "event_id": 123}, "missing_required"),
    ({**checked_in("X1", "P9"), "workshop_id": " "}, "missing_required"),
    (_drop(checked_in("X2", "P9"), "occurred_at"), "missing_required"),
    (_drop(checked_in("X3", "P9"), "event_type"), "missing_required"),
    ({**checked_in("X4", "P9"), "event_type": "participant_left"}, "unknown_event_type"),
    ({**checked_in("X5", "P9"), "event_type": 7}, "unknown_event_type"),
    (_drop(checked_in("X6", "P9"), "participant_ref"), "missing_required"),
    (checked_in("X7", "   "), "missing_required"),
    (_drop(checked_in("X8", "P9"), "age_group"), "missing_required"),
    (checked_in("X9", "P9", years_experience=""), "missing_required"),
    (registered("X10", title=2017), "missing_required"),
    (_drop(registered("X11"), "city"), "missing_required"),
    (answer("X12", "Q3", 2, None), "missing_required"),
    (_drop(closed("X13"), "reported_participants"), "missing_required"),
    (checked_in("X14", "P9", occurred_at="2017-05-03 09:12:00+02:00"), "invalid_timestamp"),
    (checked_in("X15", "P9", occurred_at="2017-05-03T09:12:00"), "invalid_timestamp"),
    (checked_in("X16", "P9", occurred_at="2017-06-31T10:00:00+02:00"), "invalid_timestamp"),
    (checked_in("X17", "P9", occurred_at=1493800000), "invalid_timestamp"),
    (checked_in("X18", "P9", country="XX"), "unknown_code"),
    (checked_in("X19", "P9", country=33), "unknown_code"),
    (checked_in("X20", "P9", library_type="Public"), "unknown_code"),
    (checked_in("X21", "P9", age_group="25-34"), "unknown_code"),
    (answer("X22", "Q7", 1, "Q7-01"), "unknown_code"),
    (answer("X23", "q1", 1, "Q1-02"), "unknown_code"),
    (registered("X24", kind="conference"), "unknown_code"),
    (registered("X25", language="pt"), "unknown_code"),
    (checked_in("X26", "P9", years_experience="12"), "invalid_experience"),
    (checked_in("X27", "P9", years_experience=12.5), "invalid_experience"),
    (checked_in("X28", "P9", years_experience=71), "invalid_experience"),
    (checked_in("X29", "P9", years_experience=True), "invalid_experience"),
    (answer("X30", "Q1", 6, "Q1-01"), "invalid_choice"),
    (answer("X31", "Q2", "2", "Q2-01"), "invalid_choice"),
    (answer("X32", "Q4", 2.5, "Q4-01"), "invalid_choice"),
    (answer("X33", "Q5", 1, "Q6-01"), "invalid_choice"),
    (answer("X34", "Q1", 4, "q1-01"), "invalid_choice"),
    (closed("X35", "40"), "invalid_choice"),
    (closed("X36", -3), "invalid_choice"),
    (registered("X37", held_on="2017-02-30"), "invalid_date"),
    (registered("X38", held_on="2016-12-10"), "invalid_date"),
    (registered("X39", held_on="10/05/2017"), "invalid_date"),
    (registered("X40", held_on=20170510), "invalid_date"),
]

PRECEDENCE_CASES = [
    ({**_drop(checked_in("Y1", "P9"), "event_type"), "occurred_at": "2017-13-01T10:00:00Z"}, "missing_required"),
    ({**checked_in("Y2", "P9", occurred_at="2017-05-03 10:00:00"), "event_type": "answer_rated"},
     "unknown_event_type"),
    (_drop(checked_in("Y3", "P9", years_experience="abc"), "country"), "missing_required"),
    (checked_in("Y4", "P9", occurred_at="soon", country="XX"), "invalid_timestamp"),
    (checked_in("Y5", "P9", country="XX", years_experience="12"), "unknown_code"),
    (answer("Y6", "Q9", 9, "Q9-99"), "unknown_code"),
    (answer("Y7", "Q1", 9, "Q2-01"), "invalid_choice"),
    (registered("Y8", country="XK", held_on="2016-01-01"), "unknown_code"),
]


@pytest.mark.parametrize("cases", [REASON_CASES, PRECEDENCE_CASES], ids=["each_reason", "precedence"])
def test_workshop_reason_codes(conn, landing, cases):
    lines = [*counting_workshop("W1"), *(line for line, _ in cases)]
    write_workshops(landing, "a.jsonl", lines)
    ingest(conn, landing)
    outcomes = workshop_outcomes(conn)
    assert [outcomes[("workshops/a.jsonl", n)] for n in (1, 2, 3, 4)] == ["accepted"] * 4
    got = {i: outcomes[("workshops/a.jsonl", i + 5)] for i in range(len(cases))}
    assert got == {i: reason for i, (_, reason) in enumerate(cases)}, [
        (cases[i][0], got[i], cases[i][1]) for i in got if got[i] != cases[i][1]]
    assert reconcile(conn).ok


def test_values_are_trimmed_and_normalised(conn, landing):
    write_workshops(landing, "a.jsonl", [
        registered("E1", kind=" national", country=" de ", title="  Vision \u00e9t\u00e9 "),
        checked_in("E2", " P1 ", country="fr", years_experience=12.0),
        answer("E3", "Q1", 1.0, " Q1-02"),
        closed("E4", 1),
        '{"event_id": "E5", "event_type": "answer_ranked", "workshop_id": "W1", '
        '"occurred_at": "2017-05-02T15:00:00.000Z", "question": "Q2", "rank": 1, "option": "Q2-0\\u0031", '
        '"device": {"ignored": true}}',
    ])
    report = ingest(conn, landing)
    assert report.outcomes == {"accepted": 5}
    row = dict(conn.execute("select event_id, participant_ref from raw.workshop_events where event_id = 'E2'")
               .fetchall())
    assert row == {"E2": "P1"}
    assert conn.execute("select country, title, kind from raw.workshop_events where event_id = 'E1'").fetchone() \
        == ("DE", "Vision \u00e9t\u00e9", "national")
    assert conn.execute("select country, years_experience from raw.workshop_events where event_id = 'E2'").fetchone() \
        == ("FR", 12)
    assert conn.execute("select option_code, occurred_at::varchar from raw.workshop_events where event_id = 'E5'") \
        .fetchone() == ("Q2-01", "2017-05-02 15:00:00")


def test_physical_line_numbers_blank_lines_crlf_and_bom(conn, landing):
    lines = counting_workshop("W1")
    data = jsonl_bytes([lines[0], "", lines[1], "   ", "{broken", lines[2], lines[3]], eol="\r\n", bom=True)
    write_file(landing, "workshops/a.jsonl", data + b"\n\n")
    report = ingest(conn, landing)
    assert report.records_read == 5
    assert workshop_outcomes(conn) == {
        ("workshops/a.jsonl", 1): "accepted", ("workshops/a.jsonl", 3): "accepted",
        ("workshops/a.jsonl", 5): "malformed_json", ("workshops/a.jsonl", 6): "accepted",
        ("workshops/a.jsonl", 7): "accepted"}
    text = quarantine_row(conn, "workshop_quarantine", "workshops/a.jsonl", 5)["record_text"]
    assert text == "{broken"
    assert reconcile(conn).ok


def test_bare_cr_inside_a_line_does_not_split_it(conn, landing):
    line = '{"event_id": "E9",\r"event_type": "participant_checked_in", "workshop_id": "W1", ' \
           '"occurred_at": "2017-05-02T09:40:00+02:00", "participant_ref": "P2", "country": "DE", ' \
           '"library_type": "public", "years_experience": 3, "age_group": "25_34"}'
    write_workshops(landing, "a.jsonl", [*counting_workshop("W1"), line])
    report = ingest(conn, landing)
    assert report.outcomes == {"accepted": 5}


def test_duplicates_superseded_and_tie_breaks(conn, landing):
    # file names order the records: a < b
    write_workshops(landing, "a.jsonl", [
        registered("R1", "W1", occurred_at="2017-05-01T09:00:00Z"),
        checked_in("C1", "P1", "W1", occurred_at="2017-05-02T09:00:00Z"),
        checked_in("C2", "P2", "W1", occurred_at="2017-05-02T09:05:00Z"),
        answer("A1", "Q1", 1, "Q1-01", "W1", occurred_at="2017-05-02T15:00:00Z"),
        answer("A2", "Q1", 2, "Q1-02", "W1", occurred_at="2017-05-02T15:00:00Z"),
        closed("Z1", 2, "W1", occurred_at="2017-05-02T18:00:00Z"),
    ])
    write_workshops(landing, "b.jsonl", [
        checked_in("C1", "P1", "W1", occurred_at="2017-05-02T09:00:00Z"),       # same event again
        registered("R2", "W1", occurred_at="2017-05-03T09:00:00Z", title="x"),   # a later registration
        checked_in("C3", "P1", "W1", occurred_at="2017-05-02T08:00:00Z"),       # P1 earlier: wins
        checked_in("C4", "P2", "W1", occurred_at="2017-05-02T09:05:00Z"),       # P2 tie: a.jsonl wins
        answer("A3", "Q1", 1, "Q1-05", "W1", occurred_at="2017-05-02T16:00:00Z"),  # later: supersedes A1
        answer("A4", "Q1", 2, "Q1-06", "W1", occurred_at="2017-05-02T15:00:00Z"),  # tie: later record wins
        closed("Z2", 2, "W1", occurred_at="2017-05-02T17:00:00Z"),              # earlier closure: wins
    ])
    ingest(conn, landing)
    o = workshop_outcomes(conn)
    a, b = (lambda n: o[("workshops/a.jsonl", n)]), (lambda n: o[("workshops/b.jsonl", n)])
    assert [a(n) for n in range(1, 7)] == ["accepted", "duplicate", "accepted", "superseded", "superseded",
                                           "duplicate"]
    assert [b(n) for n in range(1, 8)] == ["duplicate", "duplicate", "accepted", "duplicate", "accepted",
                                           "accepted", "accepted"]


def test_out_of_order_and_repeated_events(conn, landing):
    w = counting_workshop("W1")
    write_workshops(landing, "a.jsonl", [w[3], w[2], w[2], w[1]])   # closure first, an answer twice
    write_workshops(landing, "b.jsonl", [w[0], w[1]])               # registration last, a check-in again
    ingest(conn, landing)
    assert workshop_outcomes(conn) == {
        ("workshops/a.jsonl", 1): "accepted", ("workshops/a.jsonl", 2): "accepted",
        ("workshops/a.jsonl", 3): "duplicate", ("workshops/a.jsonl", 4): "accepted",
        ("workshops/b.jsonl", 1): "accepted", ("workshops/b.jsonl", 2): "duplicate"}


def test_workshops_that_never_register_or_never_close(conn, landing):
    write_workshops(landing, "a.jsonl", [
        registered("N1", "W2"), checked_in("N2", "P1", "W2"),              # never closes
        checked_in("N3", "P1", "W3"), closed("N4", 1, "W3"),               # never registers
        registered("N5", "W4", held_on="2016-01-01"), closed("N6", 1, "W4"),  # invalid registration
        answer("N7", "Q1", 1, "Q1-01", "W2"), answer("N8", "Q1", 1, "Q1-02", "W2",
                                                     occurred_at="2017-05-02T16:00:00+02:00"),
        *counting_workshop("W1"),
    ])
    ingest(conn, landing)
    o = workshop_outcomes(conn)
    assert [o[("workshops/a.jsonl", n)] for n in range(1, 9)] == [
        "incomplete_workshop", "incomplete_workshop", "incomplete_workshop", "incomplete_workshop",
        "invalid_date", "incomplete_workshop", "superseded", "incomplete_workshop"]
    assert [o[("workshops/a.jsonl", n)] for n in range(9, 13)] == ["accepted"] * 4


def test_registered_then_closed_in_a_later_run(conn, landing):
    write_workshops(landing, "a.jsonl", [registered("E1", "W5"), checked_in("E2", "P1", "W5"),
                                         answer("E3", "Q2", 1, "Q2-03", "W5")])
    first = ingest(conn, landing)
    assert first.outcomes == {"incomplete_workshop": 3}
    write_workshops(landing, "b.jsonl", [closed("E4", 1, "W5")])
    second = ingest(conn, landing)
    assert [f.file_name for f in second.read_files] == ["workshops/b.jsonl"]
    assert second.earlier_outcomes_changed == 3
    assert set(workshop_outcomes(conn).values()) == {"accepted"}
    # once both have arrived the workshop counts once
    counting = conn.execute("select count(distinct workshop_id) from raw.workshop_events "
                            "where outcome = 'accepted' and event_type = 'workshop_registered'").fetchone()[0]
    assert counting == 1


def test_not_utf8_workshop_file(conn, landing):
    data = jsonl_bytes(counting_workshop("W1")).replace(b"Berlin", b"Berl\xefn") + b"\n\n"
    write_file(landing, "workshops/a.jsonl", data)
    report = ingest(conn, landing)
    f = report.files[0]
    assert (f.file_status, f.records_read, f.outcomes) == ("not_utf8", 4, {"malformed_json": 4})
    assert reconcile(conn).ok
