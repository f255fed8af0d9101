"""Workshop event logs: counting workshops built vectorised, dirty events planned by hand.

Each bulk workshop counts (one valid registration, one valid closure). Its events are
spread over monthly JSONL files in random order, some arrive a month late, and a backfill
file (named before the monthly ones) and a resend file (named after) deliver copies again.
The dirty planner adds quarantined events, second check-ins, re-registrations, rank
corrections and workshops that never register or never close; each planned line carries
its outcome.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.generate import textio
from orchestration.generate.reference import (
    AGE_GROUPS,
    CITIES,
    COUNTRY_OFFSET,
    COUNTRY_WEIGHTS,
    FIXED_WORKSHOPS,
    IFLA_UNITS,
    KINDS,
    LANGUAGES,
    LIBRARY_TYPES,
    PRIMARY_LANGUAGE,
    QUESTIONS,
    REGION_LABELS,
    REGION_OFFSET,
    REGIONS,
    Reference,
)
from orchestration.generate.votes import draw_people, log_weights, pool_weights

MAX_LINES_PER_FILE = 150_000  # about 35 MB of JSON
REG, CHECKIN, ANSWER, CLOSE = 0, 1, 2, 3
EVENT_TYPES = ("workshop_registered", "participant_checked_in", "answer_ranked", "workshop_closed")
BACKFILL = "workshops/backfill_2017-07-01.jsonl"   # sorts before every monthly file
RESEND = "workshops/resend_2017-10-20.jsonl"       # sorts after every monthly file
# Mix of the workshops that are neither the kick-off nor regional.
OTHER_KINDS = (("professional_unit", 30), ("national", 95), ("self_facilitated", 53))
WLIC = ("PL", "Wrocław", "2017-08-19")  # IFLA congress, 19-25 Aug 2017
OUTCOME_CODES = ("accepted", "duplicate", "superseded")
_DROP = object()  # a field to leave out of a planned event


def _day(text: str) -> int:
    return textio.day_number(text)


@dataclass
class WorkshopBulk:
    """Counting workshops and their events as column arrays."""

    n: int
    number: np.ndarray        # workshop number (id text: GVW-00042)
    kind: np.ndarray          # index into KINDS
    country: np.ndarray       # index into ref.country_codes
    region: np.ndarray
    language: np.ndarray
    city: list[str]
    title: list[str]
    first_day: np.ndarray     # days since the epoch
    days: np.ndarray
    offset: np.ndarray        # minutes
    size: np.ndarray          # distinct check-ins
    reported: np.ndarray      # reported_participants
    reg_utc: np.ndarray
    close_utc: np.ndarray
    # check-ins
    ci_ws: np.ndarray
    ci_ref: np.ndarray
    ci_country: np.ndarray
    ci_lib: np.ndarray
    ci_age: np.ndarray
    ci_years: np.ndarray
    ci_utc: np.ndarray
    # answers: (workshop, question, rank) -> option
    an_ws: np.ndarray
    an_q: np.ndarray
    an_rank: np.ndarray
    an_opt: np.ndarray        # option index 0..9 as delivered
    an_utc: np.ndarray
    an_final: np.ndarray = field(default=None)  # option after planned corrections (Borda)

    def ws_id(self, i: int) -> str:
        return f"GVW-{int(self.number[i]):05d}"


def _round_to_total(weights: np.ndarray, total: int) -> np.ndarray:
    """Whole numbers proportional to ``weights`` summing exactly to ``total``."""
    if len(weights) == 0:
        return weights.astype(np.int64)
    x = weights / weights.sum() * total
    out = np.floor(x).astype(np.int64)
    rest = total - int(out.sum())
    order = np.argsort(-(x - out), kind="stable")
    out[order[:rest]] += 1
    return out


def _region_pools(ref: Reference):
    pool_idx, pool_p = pool_weights(ref)
    region = np.array([REGIONS.index(ref.country_region[ref.country_codes[i]]) for i in pool_idx])
    out = {}
    for r in range(len(REGIONS)):
        sel = region == r
        out[r] = (pool_idx[sel], pool_p[sel] / pool_p[sel].sum())
    return pool_idx, pool_p, out


def plan_bulk(rng: np.random.Generator, ref: Reference, n_ws: int, participants: int,
              numbers: np.ndarray) -> WorkshopBulk:
    codes = ref.country_codes
    fixed = FIXED_WORKSHOPS[: min(len(FIXED_WORKSHOPS), n_ws)]
    rest = n_ws - len(fixed)
    counts = _round_to_total(np.array([w for _, w in OTHER_KINDS], dtype=float), rest)
    kinds, countries, cities, titles, firsts, days, langs, sizes = [], [], [], [], [], [], [], []
    for kind, cc, city, lang, first, nd, region, size in fixed:
        kinds.append(KINDS.index(kind))
        countries.append(codes.index(cc))
        cities.append(city)
        titles.append("Global Vision kick-off meeting" if kind == "kickoff"
                      else f"Global Vision regional workshop for {REGION_LABELS[region]}")
        firsts.append(_day(first))
        days.append(nd)
        langs.append(LANGUAGES.index(lang))
        sizes.append(float(size))
    host = sorted(CITIES)
    host_w = np.array([COUNTRY_WEIGHTS.get(c, 25) for c in host], dtype=float) ** 0.7
    host_w /= host_w.sum()
    for (kind, _), k in zip(OTHER_KINDS, counts):
        for _ in range(int(k)):
            cc = host[rng.choice(len(host), p=host_w)]
            city = CITIES[cc]
            if kind == "professional_unit":
                unit = IFLA_UNITS[rng.integers(len(IFLA_UNITS))]
                title = f"Global Vision discussion, IFLA {unit}"
                if rng.random() < 0.6:
                    cc, city, first = WLIC[0], WLIC[1], _day(WLIC[2]) + int(rng.integers(0, 7))
                else:
                    first = _day("2017-04-15") + int(rng.integers(0, 183))
                size = 8 + rng.gamma(2.2, 11)
            elif kind == "national":
                title = f"Global Vision national workshop: {ref.country_names[cc]}"
                first = _day("2017-04-20") + int(rng.integers(0, 184))
                size = 12 + rng.lognormal(3.7, 0.55)
            else:
                title = f"Self-facilitated Global Vision workshop, {city}"
                first = _day("2017-05-15") + int(rng.integers(0, 170))
                size = 4 + rng.gamma(2.0, 8)
            kinds.append(KINDS.index(kind))
            countries.append(codes.index(cc))
            cities.append(city)
            titles.append(title)
            firsts.append(first)
            days.append(1 if rng.random() < 0.7 else 2)
            langs.append(LANGUAGES.index(PRIMARY_LANGUAGE.get(cc, "en")))
            sizes.append(float(size))
    kind = np.array(kinds, dtype=np.int64)
    country = np.array(countries, dtype=np.int64)
    region = np.array([REGIONS.index(ref.country_region[codes[c]]) for c in country], dtype=np.int64)
    first_day = np.array(firsts, dtype=np.int64)
    ndays = np.array(days, dtype=np.int64)
    offset = np.array([COUNTRY_OFFSET.get(codes[c], REGION_OFFSET[ref.country_region[codes[c]]])
                       for c in country], dtype=np.int64)
    size = _round_to_total(np.array(sizes), participants)
    reported = size.copy()
    off = rng.random(n_ws) < 0.15
    delta = rng.integers(1, 9, n_ws) * np.where(rng.random(n_ws) < 0.6, 1, -1)
    reported = np.where(off, np.maximum(size + delta, 0), size)
    reported = np.where(off & (reported == size), size + 1, reported)

    last_day = first_day + ndays - 1
    reg_utc = ((first_day - rng.integers(5, 46, n_ws)) * 86400 + rng.integers(9 * 3600, 18 * 3600, n_ws)
               - offset * 60)
    close_utc = ((last_day + np.where(rng.random(n_ws) < 0.7, 0, rng.integers(1, 11, n_ws))) * 86400
                 + rng.integers(17 * 3600 + 1800, 19 * 3600, n_ws) - offset * 60)

    # check-ins
    total = int(size.sum())
    ci_ws = np.repeat(np.arange(n_ws), size)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]]) if n_ws else np.zeros(0, np.int64)
    ci_ref = np.arange(total) - np.repeat(starts, size) + 1
    pool_idx, pool_p, by_region = _region_pools(ref)
    ci_country = country[ci_ws].copy()
    k = kind[ci_ws]
    u = rng.random(total)
    international = (k == KINDS.index("kickoff")) | (k == KINDS.index("professional_unit"))
    regional = k == KINDS.index("regional")
    local = ~international & ~regional
    pick_global = international
    pick_region = (regional & (u > 0.35)) | (local & (u > 0.92))
    ci_country[pick_global] = rng.choice(pool_idx, size=int(pick_global.sum()), p=pool_p)
    ci_region = region[ci_ws]
    for r, (idx, p) in by_region.items():
        rows = np.flatnonzero(pick_region & (ci_region == r))
        ci_country[rows] = rng.choice(idx, size=rows.size, p=p)
    ci_lib, ci_age, ci_years = draw_people(rng, total)
    ci_day = first_day[ci_ws] + np.where((ndays[ci_ws] == 2) & (rng.random(total) < 0.15), 1, 0)
    ci_utc = ci_day * 86400 + rng.integers(8 * 3600, 10 * 3600 + 1800, total) - offset[ci_ws] * 60

    # answers: each workshop ranks a top five per question, a few skip one question
    an_parts = []
    lib_public = LIBRARY_TYPES.index("public")
    for qi, q in enumerate(QUESTIONS):
        table = log_weights(ref, q)
        keys = table[region * len(LIBRARY_TYPES) + lib_public] + rng.gumbel(size=(n_ws, 10))
        top = np.argsort(-keys, axis=1, kind="stable")[:, :5]
        answered = np.flatnonzero(rng.random(n_ws) >= 0.04)
        ws_rep = np.repeat(answered, 5)
        an_parts.append((ws_rep, np.full(ws_rep.size, qi), np.tile(np.arange(1, 6), answered.size),
                         top[answered].reshape(-1)))
    an_ws = np.concatenate([p[0] for p in an_parts]).astype(np.int64)
    an_q = np.concatenate([p[1] for p in an_parts]).astype(np.int64)
    an_rank = np.concatenate([p[2] for p in an_parts]).astype(np.int64)
    an_opt = np.concatenate([p[3] for p in an_parts]).astype(np.int64)
    an_utc = (last_day[an_ws] * 86400 + rng.integers(14 * 3600, 17 * 3600 + 1800, an_ws.size)
              - offset[an_ws] * 60)
    return WorkshopBulk(n_ws, numbers, kind, country, region, np.array(langs, dtype=np.int64), cities, titles,
                        first_day, ndays, offset, size, reported, reg_utc, close_utc,
                        ci_ws, ci_ref, ci_country, ci_lib, ci_age, ci_years, ci_utc,
                        an_ws, an_q, an_rank, an_opt, an_utc, an_opt.copy())


# --- dirty events ----------------------------------------------------------------------------

@dataclass
class DirtyEvent:
    file: str | None          # None: a monthly file chosen by occurred_at
    text: str | None          # a raw line (malformed JSON), else built from ``obj``
    obj: dict | None
    outcome: str
    utc: int                  # for choosing the monthly file
    group: int = 0


class DirtyWorkshopPlanner:
    """Plans the deliberately dirty workshop lines and the counting workshops' corrections."""

    def __init__(self, rr: random.Random, ref: Reference, bulk: WorkshopBulk, scale: float,
                 incomplete_numbers: list[int]):
        self.rr = rr
        self.ref = ref
        self.b = bulk
        self.scale = scale
        self.events: list[DirtyEvent] = []
        self.next_event = 900_000_000
        self.incomplete_numbers = incomplete_numbers
        self.incomplete_ids: list[str] = []
        self.group = 0
        # bulk events that dirty scenarios rely on: never re-delivered as copies
        self.reserved_checkins: set[int] = set()
        self.reserved_answers: set[int] = set()
        self.superseded_answers: set[int] = set()
        self.duplicate_checkins: set[int] = set()   # bulk check-ins that lose a tie
        self.non_pool = tuple(c for c in ref.country_codes if c not in ref.pool)
        self.answer_index = {(int(w), int(q), int(r)): i for i, (w, q, r) in
                             enumerate(zip(bulk.an_ws, bulk.an_q, bulk.an_rank))}

    def n(self, base: int) -> int:
        return max(1, round(base * self.scale))

    def event_id(self) -> str:
        self.next_event += 1
        return f"E{self.next_event:09d}"

    def ts(self, utc: int, offset: int) -> str:
        return textio.format_timestamp(utc, offset)

    def add(self, obj: dict | None, outcome: str, utc: int, file: str | None = None,
            text: str | None = None) -> None:
        self.events.append(DirtyEvent(file, text, obj, outcome, int(utc), self.group))

    def workshop(self) -> int:
        """A counting workshop."""
        return self.rr.randrange(self.b.n)

    def header(self, etype: str, w: int | str, utc: int, offset: int) -> dict:
        wid = self.b.ws_id(w) if isinstance(w, int | np.integer) else w
        return {"event_id": self.event_id(), "event_type": etype, "workshop_id": wid,
                "occurred_at": self.ts(utc, offset)}

    def person(self) -> dict:
        rr = self.rr
        ai = rr.randrange(6)
        return {"country": rr.choice(self.ref.pool), "library_type": rr.choice(LIBRARY_TYPES),
                "years_experience": rr.randint(0, 40), "age_group": AGE_GROUPS[ai]}

    def checkin(self, w: int, ref_text: str, utc: int | None = None, **changes) -> tuple[dict, int]:
        b = self.b
        utc = utc if utc is not None else int(b.first_day[w] * 86400 + 9 * 3600 - b.offset[w] * 60
                                              + self.rr.randint(0, 5400))
        obj = self.header("participant_checked_in", w, utc, int(b.offset[w]))
        obj.update({"participant_ref": ref_text, **self.person()})
        obj.update(changes)
        return obj, utc

    def registration(self, w: int, utc: int, **changes) -> dict:
        b = self.b
        obj = self.header("workshop_registered", w, utc, int(b.offset[w]))
        obj.update({"kind": KINDS[b.kind[w]], "title": b.title[w], "held_on": textio.date_text(b.first_day[w]),
                    "country": self.ref.country_codes[b.country[w]], "city": b.city[w],
                    "language": LANGUAGES[b.language[w]]})
        obj.update(changes)
        return obj

    def plan(self) -> list[DirtyEvent]:
        self._malformed()
        self._invalid()
        self._duplicates()
        self._corrections()
        self._incomplete()
        return self.events

    # --------------------------------------------------------------------------------------
    def _malformed(self) -> None:
        rr = self.rr
        raw = [
            None,  # a truncated event
            "[1, 2, 3]", '"participant_checked_in"', "null", "42",
            "{'event_id': 'E1', 'event_type': 'workshop_closed'}",
            None,  # a missing comma between two fields
            "event_type=participant_checked_in;workshop_id=GVW-00001",
            '{"event_id": "E000000001", "event_type": "answer_ranked"',
            "<html><body>502 Bad Gateway</body></html>",
        ]
        for i in range(self.n(14)):
            self.group += 1
            w = self.workshop()
            obj, utc = self.checkin(w, f"X{rr.randint(1000, 9999)}")
            text = raw[i % len(raw)]
            if text is None and i % len(raw) == 0:
                full = json.dumps(obj, ensure_ascii=False)
                text = full[: int(len(full) * 0.6)]
            elif text is None:
                text = json.dumps(obj, ensure_ascii=False).replace(", ", " ", 1)
            self.add(None, "malformed_json", utc, text=text)

    def _invalid(self) -> None:
        """Events breaking a record rule, attached to counting workshops without touching
        what counts: fresh participant refs, answers older than the valid ones (or for a
        question that cannot match), registrations and closures newer than the valid ones."""
        rr = self.rr
        b = self.b

        def fresh_ref() -> str:
            return f"Z{rr.randint(10000, 99999)}"

        def later(w: int) -> int:
            return int(b.close_utc[w]) + rr.randint(3600, 20 * 86400)

        def earlier(w: int) -> int:
            return int(b.reg_utc[w]) + rr.randint(60, 3600)

        def answer(w: int, q: str, rank, option, utc: int) -> dict:
            obj = self.header("answer_ranked", w, utc, int(b.offset[w]))
            obj.update({"question": q, "rank": rank, "option": option})
            return obj

        def closed(w: int, reported, utc: int) -> dict:
            obj = self.header("workshop_closed", w, utc, int(b.offset[w]))
            obj["reported_participants"] = reported
            return obj

        def each(base: int, outcome: str, makers: list) -> None:
            for i in range(self.n(base)):
                self.group += 1
                w = self.workshop()
                obj, utc = makers[i % len(makers)](w)
                self.add(obj, outcome, utc)

        def ci(**changes):
            def make(w):
                return self.checkin(w, fresh_ref(), **changes)
            return make

        def drop(keys, **changes):
            def make(w):
                obj, utc = self.checkin(w, fresh_ref(), **changes)
                for k in keys:
                    obj.pop(k, None)
                return obj, utc
            return make

        def set_(key, value, maker):
            def make(w):
                obj, utc = maker(w)
                obj[key] = value
                return obj, utc
            return make

        def second_reg(**changes):
            def make(w):
                t = later(w)
                obj = self.registration(w, t, **changes)
                for k, v in changes.items():
                    if v is _DROP:
                        obj.pop(k)
                return obj, t
            return make

        def second_close(reported, drop_field=False):
            def make(w):
                t = later(w)
                obj = closed(w, reported, t)
                if drop_field:
                    obj.pop("reported_participants")
                return obj, t
            return make

        def old_answer(q_of, rank, option_of):
            def make(w):
                t = earlier(w)
                q = q_of(w)
                return answer(w, q, rank, option_of(q), t), t
            return make

        opt = lambda q, j=1: self.ref.options[q][j]  # noqa: E731
        each(16, "missing_required", [
            set_("event_id", None, ci()), drop(["event_id"]), set_("event_id", 123, ci()),
            set_("workshop_id", "", ci()), drop(["occurred_at"]), drop(["event_type"]),
            drop(["participant_ref"]), set_("participant_ref", "   ", ci()), drop(["age_group"]),
            drop(["event_type"], occurred_at="2017-13-01T10:00:00Z"),
            drop(["country"], years_experience="abc"),
            second_reg(city=_DROP), second_reg(title=2017), second_close(None, drop_field=True),
            old_answer(lambda w: "Q3", 2, lambda q: None),
        ])
        each(12, "unknown_event_type", [
            set_("event_type", "participant_left", ci()), set_("event_type", "photo_uploaded", ci()),
            set_("event_type", "workshop_cancelled", ci()), set_("event_type", "note_added", ci()),
            set_("event_type", "answer_rated", ci(occurred_at="2017-05-03 10:00:00")),
        ])
        each(12, "invalid_timestamp", [
            ci(occurred_at="2017-05-03 09:12:00+02:00"), ci(occurred_at="2017-05-03T09:12:00"),
            ci(occurred_at="03/05/2017 09:12"), ci(occurred_at="2017-06-31T10:00:00+02:00"),
            ci(occurred_at="2017-05-03T24:30:00Z"), ci(occurred_at="2017-05-03", country="XX"),
            ci(occurred_at="soon", country="XX"),
        ])
        each(14, "unknown_code", [
            ci(country="XX"), ci(country="UK"), ci(country=33), ci(library_type="university"),
            ci(library_type="Public"), ci(age_group="25-34"), ci(country="XX", years_experience="12"),
            old_answer(lambda w: "Q7", 1, lambda q: "Q7-01"), old_answer(lambda w: "q1", 1, lambda q: "Q1-02"),
            second_reg(kind="conference"), second_reg(language="pt"), second_reg(country="XK"),
        ])
        each(12, "invalid_experience", [
            ci(years_experience="12"), ci(years_experience=12.5), ci(years_experience=71),
            ci(years_experience=-2), ci(years_experience=True), ci(years_experience=100),
        ])
        each(14, "invalid_choice", [
            old_answer(lambda w: "Q1", 6, lambda q: opt(q)), old_answer(lambda w: "Q2", 0, lambda q: opt(q)),
            old_answer(lambda w: "Q3", "2", lambda q: opt(q)), old_answer(lambda w: "Q4", 2.5, lambda q: opt(q)),
            old_answer(lambda w: "Q5", 1, lambda q: "Q6-01"), old_answer(lambda w: "Q6", 3, lambda q: "Q6-11"),
            old_answer(lambda w: "Q1", 4, lambda q: "q1-01"),
            second_close("40"), second_close(-3), second_close(12.5),
        ])
        each(12, "invalid_date", [
            second_reg(held_on="2017-02-30"), second_reg(held_on="2016-12-10"), second_reg(held_on="2018-01-15"),
            second_reg(held_on="10/05/2017"), second_reg(held_on="2017-5-3"), second_reg(held_on="2017-13-01"),
        ])

    def _duplicates(self) -> None:
        rr = self.rr
        b = self.b
        # a second, later registration or closure of a counting workshop
        for i in range(self.n(4)):
            self.group += 1
            w = self.workshop()
            t = int(b.reg_utc[w]) + rr.randint(3600, 3 * 86400)
            self.add(self.registration(w, t, title=b.title[w] + " (updated)"), "duplicate", t)
        for i in range(self.n(4)):
            self.group += 1
            w = self.workshop()
            t = int(b.close_utc[w]) + rr.randint(600, 5 * 86400)
            obj = self.header("workshop_closed", w, t, int(b.offset[w]))
            obj["reported_participants"] = int(b.reported[w]) + rr.choice((0, 0, 1, 2))
            self.add(obj, "duplicate", t)
        # the same participant checked in again, later: the earliest check-in wins
        for i in range(self.n(10)):
            self.group += 1
            c = self._free_checkin()
            if c is None:
                break
            self.reserved_checkins.add(c)
            obj = self._checkin_copy(c)
            t = int(b.ci_utc[c]) + rr.randint(60, 4 * 3600)
            obj["occurred_at"] = self.ts(t, int(b.offset[b.ci_ws[c]]))
            if i % 2:
                obj["library_type"] = rr.choice([x for x in LIBRARY_TYPES if x != obj["library_type"]])
                obj["years_experience"] = min(70, obj["years_experience"] + 5)
                obj["country"] = rr.choice(self.non_pool)
            self.add(obj, "duplicate", t, file=BACKFILL if i % 3 == 0 else None)
        # the same check-in recorded twice at the same instant: the earlier record wins,
        # which here is the copy in the backfill file, so the monthly one is the duplicate
        for i in range(self.n(3)):
            self.group += 1
            c = self._free_checkin()
            if c is None:
                break
            self.reserved_checkins.add(c)
            self.duplicate_checkins.add(c)
            self.add(self._checkin_copy(c), "accepted", int(b.ci_utc[c]), file=BACKFILL)

    def _free_checkin(self) -> int | None:
        """A bulk check-in no other scenario uses (None when tiny scales run out)."""
        if len(self.reserved_checkins) * 2 >= len(self.b.ci_ws):
            return None
        while True:
            c = self.rr.randrange(len(self.b.ci_ws))
            if c not in self.reserved_checkins:
                return c

    def _checkin_copy(self, c: int) -> dict:
        """A new event (new event_id) with the same facts as bulk check-in ``c``."""
        b = self.b
        w = int(b.ci_ws[c])
        obj = self.header("participant_checked_in", w, int(b.ci_utc[c]), int(b.offset[w]))
        obj.update({"participant_ref": f"P{int(b.ci_ref[c]):04d}",
                    "country": self.ref.country_codes[b.ci_country[c]],
                    "library_type": LIBRARY_TYPES[b.ci_lib[c]],
                    "years_experience": int(b.ci_years[c]), "age_group": AGE_GROUPS[b.ci_age[c]]})
        return obj

    def _corrections(self) -> None:
        """Rank corrections of counting workshops: the later answer wins (Borda follows)."""
        rr = self.rr
        b = self.b
        done: set[tuple[int, int]] = set()

        pairs = sorted({(int(w), int(q)) for w, q in zip(b.an_ws, b.an_q)})

        def pick_pair() -> tuple[int, int] | None:
            """A (workshop, question) no other correction uses (None when none is left)."""
            if len(done) >= len(pairs):
                return None
            while True:
                key = pairs[rr.randrange(len(pairs))]
                if key not in done:
                    done.add(key)
                    return key

        def event(i: int, option: int, utc: int) -> dict:
            w = int(b.an_ws[i])
            q = QUESTIONS[b.an_q[i]]
            obj = self.header("answer_ranked", w, utc, int(b.offset[w]))
            obj.update({"question": q, "rank": int(b.an_rank[i]), "option": self.ref.options[q][option]})
            return obj

        # two ranks swapped, an hour later
        for _ in range(self.n(6)):
            self.group += 1
            pair = pick_pair()
            if pair is None:
                break
            w, q = pair
            r = rr.randint(1, 4)
            i, j = self.answer_index[(w, q, r)], self.answer_index[(w, q, r + 1)]
            t = int(max(b.an_utc[i], b.an_utc[j])) + rr.randint(1800, 7200)
            oi, oj = int(b.an_final[i]), int(b.an_final[j])
            for idx, new in ((i, oj), (j, oi)):
                self.superseded_answers.add(idx)
                self.reserved_answers.add(idx)
                b.an_final[idx] = new
                self.add(event(idx, new, t), "accepted", t)
        # a correction at the very same instant, delivered in a later file: it wins
        for _ in range(self.n(2)):
            self.group += 1
            pair = pick_pair()
            if pair is None:
                break
            w, q = pair
            r = rr.randint(1, 5)
            i = self.answer_index[(w, q, r)]
            used = {int(b.an_final[self.answer_index[(w, q, k)]]) for k in range(1, 6)}
            new = rr.choice([o for o in range(10) if o not in used])
            self.superseded_answers.add(i)
            self.reserved_answers.add(i)
            b.an_final[i] = new
            self.add(event(i, new, int(b.an_utc[i])), "accepted", int(b.an_utc[i]), file=RESEND)

    def _incomplete(self) -> None:
        """Workshops that never register or never close: their valid events count for nothing."""
        rr = self.rr
        ref = self.ref
        for k, number in enumerate(self.incomplete_numbers):
            self.group += 1
            variant = k % 8
            wid = f"GVW-{number:05d}"
            self.incomplete_ids.append(wid)
            cc = rr.choice(sorted(CITIES))
            off = COUNTRY_OFFSET.get(cc, REGION_OFFSET[ref.country_region[cc]])
            first = _day("2017-05-01") + rr.randint(0, 150)
            base = first * 86400 + 9 * 3600 - off * 60
            reg = {"kind": rr.choice(("national", "self_facilitated")),
                   "title": f"Global Vision workshop, {CITIES[cc]} (draft)",
                   "held_on": textio.date_text(first), "country": cc, "city": CITIES[cc],
                   "language": PRIMARY_LANGUAGE.get(cc, "en")}

            def ev(etype: str, utc: int, **fields) -> dict:
                obj = {"event_id": self.event_id(), "event_type": etype, "workshop_id": wid,
                       "occurred_at": self.ts(utc, off)}
                obj.update(fields)
                return obj

            if variant in (0, 5, 7, 3, 4):
                reg_fields = dict(reg)
                outcome = "incomplete_workshop"
                if variant == 4:
                    reg_fields.pop("city")
                    outcome = "missing_required"
                t = base - 10 * 86400
                self.add(ev("workshop_registered", t, **reg_fields), outcome, t)
            if variant == 2:
                t = base - 12 * 86400
                self.add(ev("workshop_registered", t, **dict(reg, held_on="2016-11-31")), "invalid_date", t)
            n_people = rr.randint(3, 8)
            first_checkin = None
            for p in range(n_people):
                t = base + rr.randint(0, 5400)
                person = self.person()
                if rr.random() < 0.4:
                    person["country"] = rr.choice(self.non_pool)
                obj = ev("participant_checked_in", t, participant_ref=f"P{p + 1:04d}", **person)
                first_checkin = first_checkin or (obj, t)
                self.add(obj, "incomplete_workshop", t)
            questions = rr.sample(QUESTIONS, 2)
            for q in questions:
                opts = rr.sample(ref.options[q], 5)
                for r in range(5):
                    t = base + 6 * 3600 + r * 60
                    self.add(ev("answer_ranked", t, question=q, rank=r + 1, option=opts[r]),
                             "incomplete_workshop", t)
                if variant == 7:
                    # a correction: the replaced answer is superseded even here
                    self.events[-1].outcome = "superseded"
                    t = base + 8 * 3600
                    new = next(o for o in ref.options[q] if o not in opts)
                    self.add(ev("answer_ranked", t, question=q, rank=5, option=new), "incomplete_workshop", t)
            if variant == 5 and first_checkin:
                obj, t = first_checkin
                self.add(dict(obj), "duplicate", t, file=RESEND)  # the same event delivered twice
                again = dict(obj, event_id=self.event_id())
                again["occurred_at"] = self.ts(t + 1800, off)
                self.add(again, "duplicate", t + 1800)         # the same person checked in again
            t_close = base + 9 * 3600
            if variant in (1, 2, 4, 6):
                self.add(ev("workshop_closed", t_close, reported_participants=n_people), "incomplete_workshop",
                         t_close)
            if variant == 3:
                self.add(ev("workshop_closed", t_close, reported_participants=str(n_people)), "invalid_choice",
                         t_close)



# --- writing ---------------------------------------------------------------------------------

@dataclass
class EventTable:
    """Every bulk line to write: which event, in which file, with which outcome."""

    etype: np.ndarray
    index: np.ndarray
    file: np.ndarray          # index into the file-name list
    outcome: np.ndarray       # index into OUTCOME_CODES


def _month_file(utc: np.ndarray) -> np.ndarray:
    """yyyymm of the UTC instant."""
    d = (np.asarray(utc) // 86400).astype("datetime64[D]")
    months = d.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    return months


def _month_name(month_index: int) -> str:
    y, m = divmod(int(month_index), 12)
    return f"{1970 + y}-{m + 1:02d}"


def build_event_table(rng: np.random.Generator, b: WorkshopBulk, planner: DirtyWorkshopPlanner,
                      copy_fraction: float = 0.015) -> tuple[EventTable, list[str]]:
    n_ci, n_an = len(b.ci_ws), len(b.an_ws)
    etype = np.concatenate([np.full(b.n, REG), np.full(n_ci, CHECKIN), np.full(n_an, ANSWER), np.full(b.n, CLOSE)])
    index = np.concatenate([np.arange(b.n), np.arange(n_ci), np.arange(n_an), np.arange(b.n)])
    ws = np.concatenate([np.arange(b.n), b.ci_ws, b.an_ws, np.arange(b.n)])
    utc = np.concatenate([b.reg_utc, b.ci_utc, b.an_utc, b.close_utc])
    month = _month_file(utc)
    # uploads a month late (all events of a workshop) and registrations sent in after the fact
    late_ws = rng.random(b.n) < 0.08
    month = np.where(late_ws[ws], month + 1, month)
    late_reg = rng.random(b.n) < 0.04
    close_month = _month_file(b.close_utc)
    month = np.where((etype == REG) & late_reg[ws], np.maximum(month, close_month[ws] + 1), month)
    outcome = np.zeros(len(etype), dtype=np.int64)
    ci_rows = np.flatnonzero(etype == CHECKIN)
    an_rows = np.flatnonzero(etype == ANSWER)
    if planner.duplicate_checkins:
        outcome[ci_rows[sorted(planner.duplicate_checkins)]] = OUTCOME_CODES.index("duplicate")
    if planner.superseded_answers:
        outcome[an_rows[sorted(planner.superseded_answers)]] = OUTCOME_CODES.index("superseded")
    reserved = np.zeros(len(etype), dtype=bool)
    reserved[ci_rows[sorted(planner.reserved_checkins)]] = True
    reserved[an_rows[sorted(planner.reserved_answers)]] = True

    months = sorted(set(month.tolist()))
    monthly: list[str] = []
    file_of_month: dict[int, list[int]] = {}
    for m in months:
        count = int((month == m).sum())
        parts = max(1, -(-count // MAX_LINES_PER_FILE))
        names = ([f"workshops/events_{_month_name(m)}.jsonl"] if parts == 1 else
                 [f"workshops/events_{_month_name(m)}_{p + 1:02d}.jsonl" for p in range(parts)])
        file_of_month[m] = list(range(len(monthly), len(monthly) + parts))
        monthly.extend(names)
    names = [BACKFILL, *monthly, RESEND]
    file = np.empty(len(etype), dtype=np.int64)
    for m, idxs in file_of_month.items():
        rows = np.flatnonzero(month == m)
        file[rows] = np.array(idxs)[rng.integers(0, len(idxs), rows.size)] + 1

    # copies delivered again: in the backfill (read first: the copy is the accepted one)
    # or in the resend file (read last: the copy is the duplicate)
    u = rng.random(len(etype))
    to_backfill = np.flatnonzero(~reserved & (u < copy_fraction))
    to_resend = np.flatnonzero(~reserved & (u >= copy_fraction) & (u < 2 * copy_fraction))
    dup = OUTCOME_CODES.index("duplicate")
    copy_outcome_backfill = outcome[to_backfill].copy()
    outcome[to_backfill] = dup
    table = EventTable(
        np.concatenate([etype, etype[to_backfill], etype[to_resend]]),
        np.concatenate([index, index[to_backfill], index[to_resend]]),
        np.concatenate([file, np.zeros(to_backfill.size, np.int64), np.full(to_resend.size, len(names) - 1)]),
        np.concatenate([outcome, copy_outcome_backfill, np.full(to_resend.size, dup)]),
    )
    return table, names


def _json_lines(fields: list[tuple[str, object, bool]], spaced: bool) -> pa.Array:
    """JSON objects (one text per row) from columns of already-escaped values."""
    sep, colon = (", ", ": ") if spaced else (",", ":")
    parts: list[object] = []
    lit = "{"
    for i, (key, value, is_string) in enumerate(fields):
        lit += ("" if i == 0 else sep) + json.dumps(key) + colon + ('"' if is_string else "")
        if isinstance(value, str):
            lit += value
        else:
            parts.append(lit)
            parts.append(value)
            lit = ""
        if is_string:
            lit += '"'
    parts.append(lit + "}\n")
    return pc.binary_join_element_wise(*parts, "")


def _escaped(values: list[str]) -> pa.Array:
    return pa.array([json.dumps(v, ensure_ascii=False)[1:-1] for v in values])


def bulk_event_texts(rng: np.random.Generator, ref: Reference, b: WorkshopBulk, event_numbers: dict[int, np.ndarray]):
    """Column texts per event type (escaped for JSON, without quotes)."""
    codes = pa.array(ref.country_codes)
    ws_ids = pc.binary_join_element_wise(
        "GVW-", pc.utf8_lpad(pc.cast(pa.array(b.number), pa.string()), width=5, padding="0"), "")

    def eid(etype: int) -> pa.Array:
        return pc.binary_join_element_wise(
            "E", pc.utf8_lpad(pc.cast(pa.array(event_numbers[etype]), pa.string()), width=9, padding="0"), "")

    def stamps(utc: np.ndarray, offset: np.ndarray) -> pa.Array:
        n = len(utc)
        # ".000" only: planned ties and orderings rely on whole-second instants
        style = rng.choice([textio.TS_OFFSET, textio.TS_ZULU, textio.TS_MILLIS], size=n, p=(0.9, 0.07, 0.03))
        return textio.format_timestamps(utc, offset, style, np.zeros(n, dtype=np.int64))

    reg = {
        "event_id": eid(REG), "workshop_id": ws_ids, "occurred_at": stamps(b.reg_utc, b.offset),
        "kind": pa.array(KINDS).take(pa.array(b.kind)), "title": _escaped(b.title),
        "held_on": textio.date_texts(b.first_day), "country": codes.take(pa.array(b.country)),
        "city": _escaped(b.city), "language": pa.array(LANGUAGES).take(pa.array(b.language)),
    }
    n = len(b.ci_ws)
    country = codes.take(pa.array(b.ci_country))
    lower = pa.array(rng.random(n) < 0.003)
    country = pc.if_else(lower, pc.utf8_lower(country), country)
    country = pc.if_else(pa.array(rng.random(n) < 0.002), pc.binary_join_element_wise(" ", country, " ", ""),
                         country)
    years = pc.cast(pa.array(b.ci_years), pa.string())
    years = pc.if_else(pa.array(rng.random(n) < 0.003), pc.binary_join_element_wise(years, ".0", ""), years)
    extra = pc.if_else(pa.array(rng.random(n) < 0.02), pa.scalar(',"device":"tablet-2"'), pa.scalar(""))
    ci = {
        "event_id": eid(CHECKIN), "workshop_id": ws_ids.take(pa.array(b.ci_ws)),
        "occurred_at": stamps(b.ci_utc, b.offset[b.ci_ws]),
        "participant_ref": pc.binary_join_element_wise(
            "P", pc.utf8_lpad(pc.cast(pa.array(b.ci_ref), pa.string()), width=4, padding="0"), ""),
        "country": country, "library_type": pa.array(LIBRARY_TYPES).take(pa.array(b.ci_lib)),
        "years_experience": years, "age_group": pa.array(AGE_GROUPS).take(pa.array(b.ci_age)),
        "extra": extra,
    }
    option_codes = pa.array([o for q in QUESTIONS for o in ref.options[q]])
    an = {
        "event_id": eid(ANSWER), "workshop_id": ws_ids.take(pa.array(b.an_ws)),
        "occurred_at": stamps(b.an_utc, b.offset[b.an_ws]),
        "question": pa.array(QUESTIONS).take(pa.array(b.an_q)),
        "rank": pc.cast(pa.array(b.an_rank), pa.string()),
        "option": option_codes.take(pa.array(b.an_q * 10 + b.an_opt)),
    }
    close = {
        "event_id": eid(CLOSE), "workshop_id": ws_ids, "occurred_at": stamps(b.close_utc, b.offset),
        "reported_participants": pc.cast(pa.array(b.reported), pa.string()),
    }
    return {REG: reg, CHECKIN: ci, ANSWER: an, CLOSE: close}


def _lines_of(etype: int, cols: dict[str, pa.Array], rows: np.ndarray, spaced: bool) -> pa.Array:
    sel = pa.array(rows)
    t = {k: v.take(sel) for k, v in cols.items()}
    name = EVENT_TYPES[etype]
    head = [("event_id", t["event_id"], True), ("event_type", name, True),
            ("workshop_id", t["workshop_id"], True), ("occurred_at", t["occurred_at"], True)]
    if etype == REG:
        body = [(k, t[k], True) for k in ("kind", "title", "held_on", "country", "city", "language")]
    elif etype == CHECKIN:
        body = [("participant_ref", t["participant_ref"], True), ("country", t["country"], True),
                ("library_type", t["library_type"], True), ("years_experience", t["years_experience"], False),
                ("age_group", t["age_group"], True)]
    elif etype == ANSWER:
        body = [("question", t["question"], True), ("rank", t["rank"], False), ("option", t["option"], True)]
    else:
        body = [("reported_participants", t["reported_participants"], False)]
    lines = _json_lines(head + body, spaced)
    if etype == CHECKIN:
        # an ignored extra field on a few lines, spliced in before the closing brace
        lines = pc.binary_join_element_wise(pc.utf8_slice_codeunits(lines, 0, -2), t["extra"], "}\n", "")
    return lines


@dataclass
class WrittenEvents:
    name: str
    records: int
    outcomes: dict[str, int]
    size: int = 0
    not_accepted: list[tuple[int, str]] = field(default_factory=list)  # (line number, outcome)


def write_workshops(out_landing: Path, rng: np.random.Generator, ref: Reference, b: WorkshopBulk,
                    table: EventTable, names: list[str], dirty: list[DirtyEvent]) -> list[WrittenEvents]:
    # event numbers: one per planned event (copies share their original's number)
    originals = {t: (b.n if t in (REG, CLOSE) else len(b.ci_ws) if t == CHECKIN else len(b.an_ws)) for t in range(4)}
    total = sum(originals.values())
    perm = 100_000_000 + rng.permutation(total)
    event_numbers, start = {}, 0
    for t in range(4):
        event_numbers[t] = perm[start:start + originals[t]]
        start += originals[t]
    cols = bulk_event_texts(rng, ref, b, event_numbers)

    month_index = {}
    for i, name in enumerate(names):
        if name.startswith("workshops/events_"):
            month_index.setdefault(name[len("workshops/events_"):len("workshops/events_") + 7], []).append(i)
    by_file: dict[int, list[DirtyEvent]] = {}
    for ev in dirty:
        if ev.file is not None:
            fi = names.index(ev.file)
        else:
            key = dt.datetime.fromtimestamp(ev.utc, dt.UTC).strftime("%Y-%m")
            cands = month_index.get(key) or month_index[min(month_index, key=lambda k: abs(_mdiff(k, key)))]
            fi = cands[ev.group % len(cands)]
        by_file.setdefault(fi, []).append(ev)

    written = []
    for fi, name in enumerate(names):
        spaced = fi % 2 == 1
        rows = np.flatnonzero(table.file == fi)
        pieces = []
        for t in range(4):
            sel = rows[table.etype[rows] == t]
            if sel.size:
                pieces.append((_lines_of(t, cols[t], table.index[sel], spaced), sel))
        if pieces:
            lines = pa.concat_arrays([p[0] for p in pieces])
            sel_all = np.concatenate([p[1] for p in pieces])
        else:
            lines, sel_all = pa.array([], pa.string()), np.zeros(0, np.int64)
        shuffle = rng.permutation(len(sel_all))   # events arrive in any order
        lines = lines.take(pa.array(shuffle))
        sel_all = sel_all[shuffle]
        mine = by_file.get(fi, [])
        sep = (", ", ": ") if spaced else (",", ":")
        dirty_lines = [(ev.text if ev.text is not None else
                        json.dumps(ev.obj, ensure_ascii=bool(ev.group % 3 == 0), separators=sep)) + "\n"
                       for ev in mine]
        blanks = 2 if fi % 3 == 0 else 0   # blank lines are not records
        extra = dirty_lines + ["\n"] * blanks
        extra_outcome = [ev.outcome for ev in mine] + [None] * blanks
        n_bulk = len(sel_all)
        order = rng.permutation(len(extra))
        extra = [extra[i] for i in order]
        extra_outcome = [extra_outcome[i] for i in order]
        at = np.sort(rng.integers(0, n_bulk + 1, len(extra)))
        segments: list = []
        prev = 0
        for pos, text in zip(at.tolist(), extra):
            segments.append(lines.slice(prev, pos - prev))
            segments.append(text)
            prev = pos
        segments.append(lines.slice(prev, n_bulk - prev))
        size = textio.write_segments(out_landing / name, segments)
        outcomes: dict[str, int] = {}
        oc = np.bincount(table.outcome[sel_all], minlength=len(OUTCOME_CODES))
        for k, v in zip(OUTCOME_CODES, oc):
            if v:
                outcomes[k] = int(v)
        for ev in mine:
            outcomes[ev.outcome] = outcomes.get(ev.outcome, 0) + 1
        # physical line numbers (1-based, blank lines included): an extra line goes
        # before bulk line ``at``
        listing = [(int(a) + i + 1, o) for i, (a, o) in enumerate(zip(at, extra_outcome))
                   if o is not None and o != "accepted"]
        bad = np.flatnonzero(table.outcome[sel_all] != 0)
        numbers = bad + 1 + np.searchsorted(at, bad, side="right")
        listing += [(int(x), OUTCOME_CODES[c]) for x, c in zip(numbers, table.outcome[sel_all][bad])]
        written.append(WrittenEvents(name, n_bulk + len(mine), outcomes, size, sorted(listing)))
    return written


def _mdiff(a: str, b: str) -> int:
    return (int(a[:4]) * 12 + int(a[5:7])) - (int(b[:4]) * 12 + int(b[5:7]))
