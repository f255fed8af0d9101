"""Ingestion of votes CSV files: record rules, precedence, file formats, versions, PII."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from landing_builders import (
    SALT,
    all_text,
    csv_bytes,
    ingest,
    quarantine_row,
    vote,
    vote_outcomes,
    write_file,
    write_votes,
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


# --- each reason code ---------------------------------------------------------------------------

REASON_CASES = [
    ({"language": ""}, "missing_required"),
    ({"country": "   "}, "missing_required"),
    ({"years_experience": ""}, "missing_required"),
    ({"response_id": " "}, "missing_required"),
    ({"submitted_at": ""}, "missing_required"),
    ({"is_test": "TRUE"}, "test_submission"),
    ({"is_test": " true "}, "test_submission"),
    ({"submitted_at": "2017-09-01 12:00:00+02:00"}, "invalid_timestamp"),
    ({"submitted_at": "2017-09-01T12:00:00"}, "invalid_timestamp"),
    ({"submitted_at": "2017-09-31T10:00:00Z"}, "invalid_timestamp"),
    ({"submitted_at": "2017-09-10T24:00:00Z"}, "invalid_timestamp"),
    ({"submitted_at": "2017-09-05T10:00:00+2:00"}, "invalid_timestamp"),
    ({"submitted_at": "01/09/2017 12:00"}, "invalid_timestamp"),
    ({"submitted_at": "2017-08-20T23:59:59Z"}, "outside_voting_window"),
    ({"submitted_at": "2017-10-01T00:00:00Z"}, "outside_voting_window"),
    ({"submitted_at": "2017-10-01T02:00:00.000+0200"}, "outside_voting_window"),
    ({"language": "pt"}, "unknown_code"),
    ({"language": "EN"}, "unknown_code"),
    ({"country": "XX"}, "unknown_code"),
    ({"library_type": "Public"}, "unknown_code"),
    ({"age_group": "25-34"}, "unknown_code"),
    ({"is_test": "yes"}, "unknown_code"),
    ({"years_experience": "71"}, "invalid_experience"),
    ({"years_experience": "-1"}, "invalid_experience"),
    ({"years_experience": "12.5"}, "invalid_experience"),
    ({"years_experience": "+5"}, "invalid_experience"),
    ({"years_experience": "99999999999999999999999"}, "invalid_experience"),
    ({"q1": "Q2-01"}, "invalid_choice"),
    ({"q2": "Q2-04;Q2-04"}, "invalid_choice"),
    ({"q3": "Q3-01;Q3-02;Q3-03;Q3-04;Q3-05;Q3-06"}, "invalid_choice"),
    ({"q6": "q6-01"}, "invalid_choice"),
    ({"q1": "Q1-01,Q1-02"}, "invalid_choice"),
]


# a record breaking several rules gets the first in the contract's order
PRECEDENCE_CASES = [
    ({"country": "", "submitted_at": "2017-09-31T10:00:00Z", "language": "pt"}, "missing_required"),
    ({"years_experience": "", "is_test": "true"}, "missing_required"),
    ({"is_test": "true", "country": "XX", "years_experience": "99"}, "test_submission"),
    ({"is_test": "true", "submitted_at": "2017-08-19T09:00:00+02:00"}, "test_submission"),
    ({"submitted_at": "2017-09-06T08:00:00", "language": "pt", "country": "XX"}, "invalid_timestamp"),
    ({"submitted_at": "2016-09-01T12:00:00Z", "country": "XX", "years_experience": "-4"}, "outside_voting_window"),
    ({"country": "ZZ", "years_experience": "200", "q1": "Q9-01"}, "unknown_code"),
    ({"is_test": "no", "years_experience": "200"}, "unknown_code"),
    ({"years_experience": "99", "q1": "Q1-99"}, "invalid_experience"),
]


@pytest.mark.parametrize("cases", [REASON_CASES, PRECEDENCE_CASES], ids=["each_reason", "precedence"])
def test_vote_reason_codes(conn, landing, cases):
    # one file: a valid record, then one record per case (one load for all of them)
    write_votes(landing, "a.csv", [vote("OK1"), *({**vote(f"BAD{i}"), **fields} for i, (fields, _) in enumerate(cases))])
    ingest(conn, landing)
    outcomes = vote_outcomes(conn)
    assert outcomes[("votes/a.csv", 1)] == "accepted"
    got = {i: outcomes[("votes/a.csv", i + 2)] for i in range(len(cases))}
    assert got == {i: reason for i, (_, reason) in enumerate(cases)}, [
        (cases[i][0], got[i], cases[i][1]) for i in got if got[i] != cases[i][1]]


def test_accepted_edge_values_are_normalised(conn, landing):
    write_votes(landing, "a.csv", [
        vote("E1", submitted_at="2017-08-21T00:00:00Z"),
        vote("E2", submitted_at="2017-08-21T02:00:00+02:00", years_experience="07"),
        vote("E3", submitted_at="2017-09-30T23:59:59Z", years_experience=" 70 "),
        vote("E4", submitted_at="2017-09-10T12:30+0530", country=" fr ", language=" en"),
        vote("E5", submitted_at="2017-09-12T08:15:30.250Z", q1=" Q1-01 ; Q1-02;;", q3=";"),
        vote("E6", is_test=" FALSE ", q2="\u00a0Q2-04\u3000"),
    ])
    report = ingest(conn, landing)
    assert report.outcomes == {"accepted": 6}
    rows = {r[0]: r[1:] for r in conn.execute(
        "select response_id, submitted_at::varchar, country, language, years_experience, q1, q2, q3 "
        "from raw.votes").fetchall()}
    assert rows["E1"][0] == "2017-08-21 00:00:00"
    assert rows["E2"][0] == "2017-08-21 00:00:00" and rows["E2"][3] == 7
    assert rows["E3"][3] == 70
    assert rows["E4"][0] == "2017-09-10 07:00:00" and rows["E4"][1:3] == ("FR", "en")
    assert rows["E5"][0] == "2017-09-12 08:15:30.25" and rows["E5"][4] == "Q1-01;Q1-02" and rows["E5"][6] == ""
    assert rows["E6"][5] == "Q2-04"


def test_quarantine_detail_names_the_column(conn, landing):
    write_votes(landing, "a.csv", [vote("B1", country="XX"), vote("B2", language="", age_group="")])
    ingest(conn, landing)
    assert "country 'XX'" in quarantine_row(conn, "vote_quarantine", "votes/a.csv", 1)["detail"]
    assert quarantine_row(conn, "vote_quarantine", "votes/a.csv", 2)["detail"].endswith("language; age_group")
    assert quarantine_row(conn, "vote_quarantine", "votes/a.csv", 1)["response_id"] == "B1"


# --- malformed rows and record numbers ------------------------------------------------------------

def test_malformed_rows_and_record_numbers_across_multiline_fields(conn, landing):
    cols = [*__import__("landing_builders").VOTE_COLUMNS, "comment"]
    good = lambda rid, comment="": [*vote(rid).values(), comment]  # noqa: E731
    rows = [
        good("R1", "first line\nsecond line, with a comma"),   # record 1 spans two lines
        ",".join(good("R2")[:-3]),                              # record 2: too few fields
        good("R3", 'she said "hi"\r\nand left'),               # record 3 spans two lines
        ",".join(good("R4")) + ",extra,fields",                 # record 4: too many fields
        good("R5"),
        good("R6", "a\n\nb"),                                   # blank line inside quotes
        'R7,"never closed,2017',                                # record 7: runs to the end
        good("R8"),
    ]
    write_votes(landing, "a.csv", rows, columns=cols)
    report = ingest(conn, landing)
    outcomes = vote_outcomes(conn)
    assert outcomes == {
        ("votes/a.csv", 1): "accepted", ("votes/a.csv", 2): "malformed_row", ("votes/a.csv", 3): "accepted",
        ("votes/a.csv", 4): "malformed_row", ("votes/a.csv", 5): "accepted", ("votes/a.csv", 6): "accepted",
        ("votes/a.csv", 7): "malformed_row",
    }
    # RFC 4180: the unterminated quote swallows the rest of the file into record 7
    assert report.records_read == 7
    numbers = dict(conn.execute("select response_id, record_number from raw.votes").fetchall())
    assert numbers == {"R1": 1, "R3": 3, "R5": 5, "R6": 6}
    assert "too many columns" in quarantine_row(conn, "vote_quarantine", "votes/a.csv", 4)["detail"]
    assert reconcile(conn).ok


def test_blank_lines_are_not_records_and_numbers_stay_right(conn, landing):
    # blank lines and malformed rows together: the slow numbering path
    lines = [",".join(vote("R1").values()), "", ",".join(list(vote("R2").values())[:5]), "", "",
             ",".join(vote("R3").values()), ",".join(list(vote("R4").values())[:3]), ",".join(vote("R5").values())]
    write_file(landing, "votes/a.csv", csv_bytes(lines))
    ingest(conn, landing)
    assert vote_outcomes(conn) == {("votes/a.csv", 1): "accepted", ("votes/a.csv", 2): "malformed_row",
                                   ("votes/a.csv", 3): "accepted", ("votes/a.csv", 4): "malformed_row",
                                   ("votes/a.csv", 5): "accepted"}
    assert dict(conn.execute("select response_id, record_number from raw.votes").fetchall()) == \
        {"R1": 1, "R3": 3, "R5": 5}


def test_mixed_line_endings_are_read_leniently(conn, landing):
    data = csv_bytes([vote("R1"), vote("R2")], eol="\r\n") + csv_bytes([vote("R3")]).split(b"\n", 1)[1]
    write_file(landing, "votes/a.csv", data)
    report = ingest(conn, landing)
    assert report.outcomes == {"accepted": 3}
    assert "lenient" in report.files[0].message


# --- file formats -----------------------------------------------------------------------------------

def test_bom_crlf_shuffled_extra_columns_and_messy_headers(conn, landing):
    cols = ["Comment", "q6", "q5", "q4", "q3", "q2", "q1", "is_test", "respondent_email", "age_group",
            "years_experience", "library_type", "country", "language", "submitted_at", "response_id", "source"]
    header = [" COMMENT", "Q6", "q5 ", "Q4", "q3", "Q2", "q1", "IS_TEST", "Respondent_Email", " Age_Group ",
              "years_EXPERIENCE", "Library_Type", "COUNTRY", "Language", " submitted_at", "Response_ID", "source"]
    rows = [{**vote("R1"), "Comment": "x", "source": "web"}, {**vote("R2", country="de"), "source": "mobile"}]
    write_file(landing, "votes/a.csv", csv_bytes(rows, columns=cols, header=header, bom=True, eol="\r\n",
                                                  quote_all=True))
    report = ingest(conn, landing)
    assert report.outcomes == {"accepted": 2}
    assert report.files[0].extra_columns == ["COMMENT", "source"]
    assert conn.execute("select extra_columns from raw.load_ledger").fetchone()[0] == "COMMENT,source"
    assert sorted(conn.execute("select response_id, country from raw.votes").fetchall()) == [("R1", "FR"), ("R2", "DE")]


def test_missing_column_rejects_the_whole_file_and_the_run_goes_on(conn, landing):
    cols = [c for c in __import__("landing_builders").VOTE_COLUMNS if c != "age_group"]
    write_votes(landing, "a_partner.csv", [vote("M1"), vote("M2", years_experience="x"), "M3,too,few"],
                columns=cols)
    write_votes(landing, "b.csv", [vote("R1")])
    report = ingest(conn, landing)
    outcomes = vote_outcomes(conn)
    assert [outcomes[("votes/a_partner.csv", n)] for n in (1, 2, 3)] == ["missing_column"] * 3
    assert outcomes[("votes/b.csv", 1)] == "accepted"
    status = dict(conn.execute("select file_name, file_status from raw.load_ledger").fetchall())
    assert status == {"votes/a_partner.csv": "missing_column", "votes/b.csv": "loaded"}
    assert "age_group" in report.files[0].message
    assert reconcile(conn).ok


def test_header_only_and_empty_files(conn, landing):
    write_votes(landing, "a.csv", [])
    write_file(landing, "votes/b.csv", b"")
    report = ingest(conn, landing)
    assert [f.records_read for f in report.files] == [0, 0]
    assert reconcile(conn).ok


def test_not_utf8_file_is_quarantined_whole(conn, landing):
    data = csv_bytes([vote("R1", respondent_email="jane.doe@example.org"), vote("R2")])
    data = data.replace(b"Q2-04", b"Q2-\xff4", 1)
    write_file(landing, "votes/bad.csv", data + b"\n")
    write_votes(landing, "good.csv", [vote("R3")])
    report = ingest(conn, landing)
    bad = next(f for f in report.files if f.file_name == "votes/bad.csv")
    assert bad.file_status == "not_utf8" and bad.records_read == 2
    assert "0xff" in bad.message
    assert bad.outcomes == {"malformed_row": 2}
    assert vote_outcomes(conn)[("votes/good.csv", 1)] == "accepted"
    assert "jane.doe@example.org" not in all_text(conn)
    assert reconcile(conn).ok


# --- duplicates and superseded versions ------------------------------------------------------------

def test_duplicates_and_superseded_versions_across_files(conn, landing):
    t1, t2 = "2017-09-01T10:00:00Z", "2017-09-02T10:00:00Z"
    write_votes(landing, "a.csv", [
        vote("A", submitted_at=t1),                     # superseded by a newer version in c.csv
        vote("B", submitted_at=t2, q1="Q1-05"),          # newer version in an earlier file: wins
        vote("C", submitted_at=t1, q1="Q1-01"),          # same instant, later file wins
        vote("D", submitted_at=t1),                      # same instant, same file: later record wins
        vote("D", submitted_at=t1, q1="Q1-07"),
        vote("E", submitted_at=t1, respondent_email="Ann@Example.org", is_test=""),
    ])
    write_votes(landing, "b.csv", [
        vote("B", submitted_at=t1),
        vote("C", submitted_at="2017-09-01T12:00:00+02:00", q1="Q1-09"),  # the same instant as t1
        # identical once normalised: a duplicate of a.csv's E
        vote("E", submitted_at=t1, respondent_email=" ann@example.ORG", is_test="FALSE", country=" fr "),
    ])
    write_votes(landing, "c.csv", [vote("A", submitted_at=t2, q2="Q2-01"), vote("A", submitted_at=t2, q2="Q2-01")])
    ingest(conn, landing)
    outcomes = vote_outcomes(conn)
    assert outcomes == {
        ("votes/a.csv", 1): "superseded", ("votes/a.csv", 2): "accepted", ("votes/a.csv", 3): "superseded",
        ("votes/a.csv", 4): "superseded", ("votes/a.csv", 5): "accepted", ("votes/a.csv", 6): "accepted",
        ("votes/b.csv", 1): "superseded", ("votes/b.csv", 2): "accepted", ("votes/b.csv", 3): "duplicate",
        ("votes/c.csv", 1): "accepted", ("votes/c.csv", 2): "duplicate",
    }
    assert conn.execute("select count(*) from raw.votes where outcome = 'accepted'").fetchone()[0] == 5


def test_invalid_newer_version_neither_wins_nor_loses(conn, landing):
    write_votes(landing, "a.csv", [vote("A", submitted_at="2017-09-01T10:00:00Z")])
    write_votes(landing, "b.csv", [vote("A", submitted_at="2017-09-05T10:00:00Z", q2="Q2-04;Q2-04")])
    write_votes(landing, "c.csv", [vote("A", submitted_at="2017-10-05T10:00:00Z")])  # outside the window
    ingest(conn, landing)
    assert vote_outcomes(conn) == {("votes/a.csv", 1): "accepted", ("votes/b.csv", 1): "invalid_choice",
                                   ("votes/c.csv", 1): "outside_voting_window"}


def test_duplicate_of_a_superseded_version(conn, landing):
    # an old version delivered twice, then a newer one: both old copies are superseded
    old = vote("A", submitted_at="2017-09-01T10:00:00Z")
    write_votes(landing, "a.csv", [old])
    write_votes(landing, "b.csv", [vote("A", submitted_at="2017-09-03T10:00:00Z", q5="Q5-01")])
    write_votes(landing, "c.csv", [vote("Z"), old])
    ingest(conn, landing)
    assert vote_outcomes(conn) == {("votes/a.csv", 1): "superseded", ("votes/b.csv", 1): "accepted",
                                   ("votes/c.csv", 1): "accepted", ("votes/c.csv", 2): "superseded"}


def test_a_byte_identical_copy_is_the_same_delivery(conn, landing):
    # the ledger knows contents by SHA-256: a copy under another name is not read again
    write_votes(landing, "a.csv", [vote("A")])
    write_votes(landing, "copy_of_a.csv", [vote("A")])
    report = ingest(conn, landing)
    copy = next(f for f in report.files if f.file_name == "votes/copy_of_a.csv")
    assert not copy.read and copy.message == "same content as votes/a.csv, already loaded"
    assert vote_outcomes(conn) == {("votes/a.csv", 1): "accepted"}


# --- personal data ----------------------------------------------------------------------------------

def test_email_is_never_stored_in_clear(conn, landing):
    emails = ["alice@example.org", "Bob.Smith@Example.COM", "carol+x@test.io", "dave@example.net",
              "erin@example.org"]
    cols = [*__import__("landing_builders").VOTE_COLUMNS, "comment"]
    write_votes(landing, "a.csv", [
        {**vote("R1", respondent_email=emails[0]), "comment": ""},                       # accepted
        {**vote("R2", respondent_email=emails[1], country="XX"), "comment": ""},         # quarantined
        {**vote("R3", respondent_email=""), "comment": f"write to {emails[2]}"},         # accepted
        {**vote("R4", respondent_email="", language="pt"), "comment": f"mail {emails[3]}"},  # quarantined
        ",".join(list(vote("R5", respondent_email=emails[4]).values())[:9]),             # malformed
    ], columns=cols)
    write_file(landing, "votes/b.csv", csv_bytes([vote("R6", respondent_email=emails[0])]).replace(
        b"Q6-10", b"Q6-\xfe10"))                                                          # not UTF-8
    ingest(conn, landing)
    text = all_text(conn)
    for email in emails:
        assert email not in text and email.lower() not in text
    assert "@" not in text
    # the key is the salted hash of the lower-cased address; the quarantine shows its prefix
    import hashlib
    key = hashlib.sha256((SALT + emails[1].lower()).encode()).hexdigest()
    assert f"<email:{key[:12]}>" in quarantine_row(conn, "vote_quarantine", "votes/a.csv", 2)["record_text"]
    stored = conn.execute("select respondent_key from raw.votes where response_id = 'R1'").fetchone()[0]
    assert stored == hashlib.sha256((SALT + emails[0]).encode()).hexdigest()
    masked = quarantine_row(conn, "vote_quarantine", "votes/a.csv", 5)["record_text"]
    assert "<email:" in masked and "R5" in masked


def test_every_record_reconciles(conn, landing):
    write_votes(landing, "a.csv", [vote("R1"), vote("R2", country="XX"), "broken", vote("R1")])
    report = ingest(conn, landing)
    assert report.records_read == 4
    assert sum(report.outcomes.values()) == 4
    result = reconcile(conn)
    assert result.ok, result.describe()


def test_file_names_with_glob_characters(conn, landing):
    write_votes(landing, "export [2017]*.csv", [vote("R1"), vote("R2", country="XX")])
    write_votes(landing, "export [2017].csv", [vote("R3")])
    report = ingest(conn, landing)
    assert {f.file_name: f.outcomes for f in report.files} == {
        "votes/export [2017]*.csv": {"accepted": 1, "unknown_code": 1},
        "votes/export [2017].csv": {"accepted": 1}}


def test_many_malformed_rows_keep_record_numbers(conn, landing):
    # more rejected rows than the inline numbering handles: the materialised path
    rows = []
    for i in range(1, 301):
        rows.append(vote(f"R{i}") if i % 3 else f"R{i},too,few")
    write_votes(landing, "a.csv", rows)
    report = ingest(conn, landing)
    assert report.outcomes == {"accepted": 200, "malformed_row": 100}
    numbers = dict(conn.execute("select response_id, record_number from raw.votes").fetchall())
    assert numbers == {f"R{i}": i for i in range(1, 301) if i % 3}
    assert reconcile(conn).ok


def test_many_malformed_rows_number_every_kind_of_record(conn, landing):
    # the lookup-table numbering path for accepted, rule-quarantined and missing_column records
    rows, partner_rows = [], []
    for i in range(1, 241):
        if i % 3 == 0:
            rows.append(f"R{i},too,few")
        elif i % 10 == 1:
            rows.append(vote(f"R{i}", country="XX"))
        else:
            rows.append(vote(f"R{i}"))
        partner_rows.append(f"P{i},too,few" if i % 2 == 0 else vote(f"P{i}"))
    write_votes(landing, "a.csv", rows)
    cols = [c for c in __import__("landing_builders").VOTE_COLUMNS if c != "age_group"]
    write_votes(landing, "b_partner.csv", partner_rows, columns=cols)
    ingest(conn, landing)
    outcomes = vote_outcomes(conn)
    assert {n: outcomes[("votes/a.csv", n)] for n in range(1, 241)} == {
        n: "malformed_row" if n % 3 == 0 else "unknown_code" if n % 10 == 1 else "accepted" for n in range(1, 241)}
    assert {outcomes[("votes/b_partner.csv", n)] for n in range(1, 241)} == {"missing_column"}
    # each quarantined record carries its own text: the numbering matched rows and records
    texts = dict(conn.execute("select record_number, record_text from raw.vote_quarantine "
                              "where file_name = 'votes/a.csv' and reason = 'unknown_code'").fetchall())
    assert texts and all(text.startswith(f"R{n},") for n, text in texts.items())
    partner = dict(conn.execute("select record_number, response_id from raw.vote_quarantine "
                                "where file_name = 'votes/b_partner.csv'").fetchall())
    assert partner == {n: None if n % 2 == 0 else f"P{n}" for n in range(1, 241)}
    assert reconcile(conn).ok


@pytest.mark.parametrize("data", [
    b"", b"ascii only\n", "caf\u00e9\n".encode(), "\ufeffbom\n".encode(), b"bad \xff byte", b"cut \xc3",
    b"surrogate \xed\xa0\x80", b"overlong \xc0\xaf", "\U0001f600 emoji".encode(),
])
def test_utf8_check_agrees_with_python(data):
    from orchestration.ingest import files as lz
    try:
        data.decode("utf-8")
        expected = True
    except UnicodeDecodeError:
        expected = False
    assert lz.is_utf8(data) is expected


@pytest.mark.parametrize("data, expected", [
    (b"h\na\nb\n", False), (b"h\r\na\r\nb\r\n", False), (b"h\n\na\n", True), (b"h\r\n\r\na\r\n", True),
    (b"\nh\na\n", True), (b"\xef\xbb\xbf\nh\n", True), (b"\xef\xbb\xbfh\na\n", False), (b"h\r\ra", True),
])
def test_blank_line_detection(data, expected):
    from orchestration.ingest import files as lz
    assert lz.has_blank_lines(data) is expected
