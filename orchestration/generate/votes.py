"""The online vote: a vectorised clean bulk plus hand-planned dirty records, as CSV files.

Every record written has an intended outcome fixed when it is planned: the bulk rows are
accepted, their re-exported copies are ``duplicate``, and each dirty record carries the
outcome the contract and ``docs/contract-decisions.md`` give it. Nothing here parses
what it wrote.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.generate import textio
from orchestration.generate.reference import (
    AGE_GROUPS,
    COMMENTS,
    COUNTRY_OFFSET,
    COUNTRY_WEIGHTS,
    FIRST_NAMES,
    LANGUAGES,
    LIBRARY_TYPES,
    PRIMARY_LANGUAGE,
    QUESTIONS,
    REGION_OFFSET,
    REGIONS,
    SECONDARY_LANGUAGE,
    Reference,
)

WINDOW_START = 1503273600  # 2017-08-21T00:00:00Z
WINDOW_END = 1506816000    # 2017-10-01T00:00:00Z (excluded)
WINDOW_DAYS = 41
MAX_ROWS_PER_FILE = 100_000  # about 20 MB of CSV

CORE = ("response_id", "submitted_at", "language", "country", "library_type",
        "years_experience", "age_group")
QCOLS = ("q1", "q2", "q3", "q4", "q5", "q6")
EMAIL, IS_TEST = "respondent_email", "is_test"
CONTRACT_COLUMNS = (*CORE, EMAIL, IS_TEST, *QCOLS)
REQUIRED_COLUMNS = (*CORE, *QCOLS)

# Respondents' age groups and their years of experience (uniform-ish ranges, mean ~15).
AGE_WEIGHTS = (0.05, 0.20, 0.26, 0.25, 0.19, 0.05)
YEARS_RANGE = ((0, 6), (0, 12), (2, 23), (6, 34), (9, 44), (12, 55))
LIBTYPE_WEIGHTS = (0.04, 0.33, 0.34, 0.12, 0.11, 0.06)

# Several time zones for the big countries.
MULTI_ZONE = {
    "US": (-240, -300, -360, -420), "CA": (-240, -300, -180, -420), "AU": (600, 570, 480),
    "BR": (-180, -240), "MX": (-300, -360), "RU": (180, 240, 300, 420, 600), "ID": (420, 480, 540),
}

# How many options a voter picks per question (0 = left blank), for Q1..Q6.
PICKS = {
    "default": (0.02, 0.03, 0.07, 0.13, 0.15, 0.60),
    "Q4": (0.08, 0.06, 0.10, 0.14, 0.14, 0.48),
}

# Preferences: global weight of option 01..10 per question, then regional and
# library-type multipliers, so that regional rankings differ from the global one.
BASE_WEIGHTS = {
    "Q1": (1.6, 4.0, 1.5, 0.9, 1.2, 1.0, 1.5, 0.8, 1.3, 1.4),
    "Q2": (1.2, 1.5, 1.6, 4.0, 1.0, 1.7, 1.2, 1.1, 1.0, 0.9),
    "Q3": (1.0, 1.2, 2.0, 1.5, 1.8, 1.6, 1.1, 1.3, 1.5, 1.4),
    "Q4": (1.2, 1.3, 1.8, 2.0, 1.7, 1.1, 1.4, 0.9, 1.5, 1.0),
    "Q5": (1.3, 4.0, 1.5, 1.8, 1.2, 1.0, 1.1, 0.9, 1.0, 1.2),
    "Q6": (1.8, 1.7, 1.5, 1.2, 1.4, 1.0, 1.1, 1.0, 1.2, 0.9),
}
REGION_BOOST = {
    "africa": {"Q1-05": 1.6, "Q2-01": 1.6, "Q3-04": 1.7, "Q5-03": 1.5, "Q6-05": 1.5},
    "asia_oceania": {"Q1-01": 1.6, "Q2-02": 1.5, "Q3-05": 1.6, "Q4-03": 1.5, "Q5-01": 1.4, "Q6-02": 1.5},
    "europe": {"Q1-07": 1.5, "Q2-06": 1.3, "Q3-01": 1.6, "Q4-04": 1.4, "Q5-06": 1.6, "Q6-01": 1.3},
    "latin_america_caribbean": {"Q1-10": 1.7, "Q2-10": 1.6, "Q3-06": 1.8, "Q4-05": 1.3, "Q5-04": 1.4,
                                "Q6-04": 1.5},
    "middle_east_north_africa": {"Q1-01": 1.9, "Q2-02": 1.7, "Q3-05": 1.5, "Q4-01": 1.5, "Q5-03": 1.4,
                                 "Q6-09": 1.6},
    "north_america": {"Q1-09": 1.8, "Q2-07": 1.6, "Q3-07": 1.5, "Q4-06": 1.3, "Q5-05": 1.5, "Q6-03": 1.6},
}
LIBTYPE_BOOST = {
    "national": {"Q1-01": 1.8, "Q2-02": 1.8, "Q5-09": 1.8, "Q6-10": 1.4},
    "academic": {"Q1-03": 1.3, "Q2-08": 1.5, "Q3-02": 1.8, "Q5-06": 1.4},
    "public": {"Q1-10": 1.4, "Q2-07": 1.4, "Q3-06": 1.4, "Q5-02": 1.2},
    "school": {"Q1-05": 1.7, "Q2-04": 1.3, "Q3-10": 1.6},
    "special": {"Q2-09": 1.4, "Q3-09": 1.3},
    "other": {},
}


def log_weights(ref: Reference, question: str) -> np.ndarray:
    """(region x library type, option) log-weights of one question."""
    base = np.log(np.array(BASE_WEIGHTS[question], dtype=np.float64))
    table = np.zeros((len(REGIONS) * len(LIBRARY_TYPES), 10))
    for ri, region in enumerate(REGIONS):
        for li, lib in enumerate(LIBRARY_TYPES):
            row = base.copy()
            for j, code in enumerate(ref.options[question]):
                row[j] += np.log(REGION_BOOST[region].get(code, 1.0) * LIBTYPE_BOOST[lib].get(code, 1.0))
            table[ri * len(LIBRARY_TYPES) + li] = row
    return table


def mask_texts(codes: tuple[str, ...]) -> pa.Array:
    """Text of every subset of a question's options, indexed by its 10-bit mask."""
    return pa.array([";".join(codes[j] for j in range(10) if m >> j & 1) for m in range(1024)])


# --- files ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class VoteFileSpec:
    slot: str
    stem: str
    family: str                 # "A": has e-mail and is_test; "B": has neither; "M": lacks age_group
    weeks: tuple[int, ...]      # bulk weeks exported in this file
    columns: tuple[str, ...]    # delivered column order
    header: tuple[str, ...]     # header texts as delivered
    bom: bool
    eol: str
    quote_all: bool

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in CONTRACT_COLUMNS)

    @property
    def missing_columns(self) -> tuple[str, ...]:
        return tuple(c for c in REQUIRED_COLUMNS if c not in self.columns)


def _spec(slot, stem, family, weeks, columns, bom, eol, quote_all, header=None):
    return VoteFileSpec(slot, stem, family, weeks, tuple(columns), tuple(header or columns), bom, eol, quote_all)


CRLF, LF = "\r\n", "\n"
FILE_SPECS = (
    _spec("A1", "export_2017-08-27", "A", (0,), (*CORE, EMAIL, IS_TEST, *QCOLS, "comment"), True, CRLF, False),
    _spec("B2", "export_2017-09-03", "B", (1,),
          ("submitted_at", "response_id", "country", "language", "age_group", "library_type",
           "years_experience", *QCOLS), False, LF, False),
    _spec("A3", "export_2017-09-10", "A", (2,),
          ("response_id", *QCOLS, "submitted_at", EMAIL, "language", "country", "years_experience",
           "library_type", "age_group", IS_TEST, "platform_version", "comment"), False, LF, True),
    _spec("B4", "export_2017-09-17", "B", (3,), (*CORE, *QCOLS, "comment"), True, CRLF, False,
          header=("Response_ID", " submitted_at", "LANGUAGE", "Country ", "Library_Type",
                  "Years_Experience", "Age_Group", "Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "Comment")),
    _spec("A5", "export_2017-09-24", "A", (4,),
          (IS_TEST, "response_id", "submitted_at", "country", "language", "library_type", "age_group",
           "years_experience", EMAIL, *QCOLS, "source"), True, LF, False),
    _spec("B6", "export_2017-10-01", "B", (5,), (*CORE, *QCOLS), False, CRLF, True),
    _spec("M", "partner_import_2017-09-15", "M", (),
          ("response_id", "submitted_at", "language", "country", "library_type", "years_experience",
           *QCOLS, "comment"), False, LF, False),
    _spec("AR", "reexport_2017-09-26", "A", (),
          ("response_id", "submitted_at", EMAIL, IS_TEST, "language", "country", "library_type",
           "years_experience", "age_group", *QCOLS), False, CRLF, False),
    _spec("BR", "reexport_2017-10-02", "B", (), (*CORE, *QCOLS, "comment"), True, LF, True),
)
SPEC_BY_SLOT = {s.slot: s for s in FILE_SPECS}
SLOT_ORDER = {s.slot: i for i, s in enumerate(sorted(FILE_SPECS, key=lambda s: s.stem))}
FAMILY_SLOTS = {
    "A": ("A1", "A3", "A5", "AR"),
    "B": ("B2", "B4", "B6", "BR"),
}
WEEK_SLOT = {w: s.slot for s in FILE_SPECS for w in s.weeks}
COPY_SLOT = {"A": "AR", "B": "BR"}


# --- the clean bulk ------------------------------------------------------------------------

@dataclass
class VoteBulk:
    """Bulk responses (all accepted) as column arrays."""

    n: int
    country: np.ndarray      # index into ref.country_codes
    region: np.ndarray       # index into REGIONS
    language: np.ndarray     # index into LANGUAGES
    library_type: np.ndarray
    age_group: np.ndarray
    years: np.ndarray        # int64, adjusted later to hit the exact experience total
    utc: np.ndarray          # submitted_at, seconds since the epoch
    offset: np.ndarray       # minutes
    ts_style: np.ndarray
    millis: np.ndarray
    masks: dict[str, np.ndarray]  # question -> 10-bit mask of chosen options
    id_number: np.ndarray
    copied: np.ndarray       # bool: re-exported (written twice)
    week: np.ndarray


def _country_tables(ref: Reference):
    codes = ref.country_codes
    region = np.array([REGIONS.index(ref.country_region[c]) for c in codes])
    primary = np.array([LANGUAGES.index(PRIMARY_LANGUAGE.get(c, "en")) for c in codes])
    secondary = np.array([
        LANGUAGES.index(SECONDARY_LANGUAGE.get(c, "fr" if PRIMARY_LANGUAGE.get(c, "en") == "en" else "en"))
        for c in codes])
    offset = np.array([COUNTRY_OFFSET.get(c, REGION_OFFSET[ref.country_region[c]]) for c in codes])
    return region, primary, secondary, offset


def pool_weights(ref: Reference) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into ref.country_codes) of the participating countries and their weights."""
    pool = ref.pool
    idx = np.array([ref.country_codes.index(c) for c in pool])
    w = np.array([COUNTRY_WEIGHTS.get(c, 25 if c in ref.un_members else 6) for c in pool], dtype=np.float64)
    return idx, w / w.sum()


def draw_people(rng: np.random.Generator, n: int):
    """Library type, age group and years of experience of ``n`` people."""
    lib = rng.choice(len(LIBRARY_TYPES), size=n, p=LIBTYPE_WEIGHTS)
    age = rng.choice(len(AGE_GROUPS), size=n, p=AGE_WEIGHTS)
    lo = np.array([r[0] for r in YEARS_RANGE])[age]
    hi = np.array([r[1] for r in YEARS_RANGE])[age]
    years = lo + np.floor(rng.beta(1.6, 1.95, size=n) * (hi - lo + 1)).astype(np.int64)
    return lib, age, np.minimum(years, hi)


def choose_options(seed: np.random.SeedSequence, ref: Reference, combo: np.ndarray, k: np.ndarray,
                   question: str) -> np.ndarray:
    """10-bit masks of the ``k`` options each voter picks: weighted sampling without
    replacement as an exponential race (the ``k`` smallest ``Exp(1) / weight`` win).

    An option's place in the race is counted by comparison with the nine others (ties
    go to the lower option), which is cheaper than sorting millions of 10-item rows."""
    rng = np.random.default_rng(seed)
    inverse = np.exp(-log_weights(ref, question)).astype(np.float32)
    keys = rng.standard_exponential((10, len(combo)), dtype=np.float32)
    keys *= inverse.T[:, combo]
    k = k.astype(np.uint8)
    mask = np.zeros(len(combo), dtype=np.int64)
    for j in range(10):
        place = ((keys[:j] <= keys[j]).sum(axis=0, dtype=np.uint8)
                 + (keys[j + 1:] < keys[j]).sum(axis=0, dtype=np.uint8))
        mask |= (place < k).astype(np.int64) << j
    return mask


def plan_bulk(rng: np.random.Generator, ref: Reference, n: int, id_numbers: np.ndarray,
              copy_fraction: float = 0.007) -> VoteBulk:
    region_of, primary, secondary, offset_of = _country_tables(ref)
    pool_idx, pool_p = pool_weights(ref)
    # every participating country votes at least once (when there are enough votes)
    forced = pool_idx[: min(n, len(pool_idx))]
    country = np.concatenate([forced, rng.choice(pool_idx, size=n - len(forced), p=pool_p)])
    country = country[rng.permutation(n)]
    region = region_of[country]
    u = rng.random(n)
    language = np.where(u < 0.80, primary[country],
                        np.where(u < 0.97, secondary[country], rng.integers(0, len(LANGUAGES), n)))
    lib, age, years = draw_people(rng, n)

    # submission time: launch spike at the Wroclaw congress, a tail, a last-week push
    d = np.arange(WINDOW_DAYS)
    day_w = 0.6 + 3.0 * np.exp(-d / 3.0) + 1.0 * np.exp(-(WINDOW_DAYS - 1 - d) / 2.0)
    day_w *= np.where(d % 7 >= 5, 0.6, 1.0)  # 21 Aug 2017 was a Monday
    day = rng.choice(WINDOW_DAYS, size=n, p=day_w / day_w.sum())
    local_sod = np.clip(rng.normal(13.5 * 3600, 3.6 * 3600, n), 0, 86399).astype(np.int64)
    offset = offset_of[country].astype(np.int64)
    codes = ref.country_codes
    for cc, zones in MULTI_ZONE.items():
        rows = np.flatnonzero(country == codes.index(cc))
        offset[rows] = np.array(zones)[rng.integers(0, len(zones), rows.size)]
    utc = WINDOW_START + day * 86400 + local_sod - offset * 60
    utc = WINDOW_START + (utc - WINDOW_START) % (WINDOW_END - WINDOW_START)
    style = rng.choice(5, size=n, p=(0.86, 0.06, 0.03, 0.02, 0.03)).astype(np.int8)
    style[(offset == 0) & (rng.random(n) < 0.5)] = textio.TS_ZULU
    utc = np.where(style == textio.TS_MINUTES, utc - utc % 60, utc)
    millis = rng.integers(0, 1000, n)

    combo = region * len(LIBRARY_TYPES) + lib
    picks = {q: rng.choice(6, size=n, p=PICKS.get(q, PICKS["default"])) for q in QUESTIONS}
    seeds = rng.bit_generator.seed_seq.spawn(len(QUESTIONS))
    # one independent stream per question: two threads, same result in any schedule
    with ThreadPoolExecutor(max_workers=2) as pool:
        masks = dict(zip(QUESTIONS, pool.map(
            lambda a: choose_options(a[0], ref, combo, picks[a[1]], a[1]), zip(seeds, QUESTIONS))))
    copied = rng.random(n) < copy_fraction
    # exports are in submission order: sort once so that every file is a slice
    o = np.argsort(utc, kind="stable")
    week = np.minimum((utc[o] - WINDOW_START) // (7 * 86400), 5)
    return VoteBulk(n, country[o], region[o], language[o], lib[o], age[o], years[o], utc[o], offset[o],
                    style[o], millis[o], {q: m[o] for q, m in masks.items()}, id_numbers[o], copied[o], week)


def response_id_texts(numbers: np.ndarray) -> pa.Array:
    """``GV`` and eight digits (numbers are 10,000,000 and up)."""
    return pc.binary_join_element_wise("GV", pc.cast(pa.array(numbers), pa.string()), "")


def response_id(number: int) -> str:
    return f"GV{number:08d}"


def _pick(rng: np.random.Generator, n: int, p: float) -> pa.Array:
    return pa.array(rng.random(n) < p)


def bulk_texts(rng: np.random.Generator, ref: Reference, bulk: VoteBulk) -> dict[str, pa.Array]:
    """Delivered text of every column of every bulk row (quoting comes later, per file).

    A few rows that are not re-exported get harmless variations the contract decisions
    normalise away (case and blanks around codes, empty option items, a leading zero).
    """
    n = bulk.n
    plain = ~bulk.copied
    texts: dict[str, pa.Array] = {}
    texts["response_id"] = response_id_texts(bulk.id_number)
    texts["submitted_at"] = textio.format_timestamps(bulk.utc, bulk.offset, bulk.ts_style, bulk.millis)

    def vary(col: pa.Array, *variations) -> pa.Array:
        """Apply each (share, function, eligible rows) to a random share of the rows,
        working on the few rows concerned and writing them back in one pass."""
        masks = []
        for p, _, where in variations:
            mask = (rng.random(n) < p) & plain
            masks.append(mask if where is None else mask & where)
        touched = np.flatnonzero(np.logical_or.reduce(masks))
        if not touched.size:
            return col
        sub = col.take(pa.array(touched))
        for mask, (_, fn, _) in zip(masks, variations):
            sub = pc.if_else(pa.array(mask[touched]), fn(sub), sub)
        full = np.zeros(n, dtype=bool)
        full[touched] = True
        return pc.replace_with_mask(col, pa.array(full), sub)

    def pad(col):
        return pc.binary_join_element_wise(" ", col, " ", "")

    texts["language"] = vary(pa.array(LANGUAGES).take(pa.array(bulk.language)), (0.002, pad, None))
    texts["country"] = vary(pa.array(ref.country_codes).take(pa.array(bulk.country)),
                            (0.003, pc.utf8_lower, None), (0.002, pad, None))
    texts["library_type"] = vary(pa.array(LIBRARY_TYPES).take(pa.array(bulk.library_type)), (0.002, pad, None))
    texts["age_group"] = pa.array(AGE_GROUPS).take(pa.array(bulk.age_group))
    texts["years_experience"] = vary(
        pc.cast(pa.array(bulk.years), pa.string()),
        (0.004, lambda c: pc.binary_join_element_wise("0", c, ""), bulk.years < 10), (0.002, pad, None))
    for qi, q in enumerate(QUESTIONS):
        many = np.bitwise_count(bulk.masks[q].astype(np.uint16)) >= 2
        texts[QCOLS[qi]] = vary(
            mask_texts(ref.options[q]).take(pa.array(bulk.masks[q])),
            (0.002, lambda c: pc.replace_substring(c, ";", " ; "), many),
            (0.002, lambda c: pc.replace_substring(c, ";", ";;", max_replacements=1), many),
            (0.001, lambda c: pc.binary_join_element_wise(c, ";", ""), None))
    names = pa.array(FIRST_NAMES).take(pa.array(rng.integers(0, len(FIRST_NAMES), n)))
    numbers = pc.cast(pa.array(rng.integers(1, 1000, n)), pa.string())
    email = pc.binary_join_element_wise(names, numbers, "@example.org", "")
    texts[EMAIL] = pc.if_else(_pick(rng, n, 0.55), email, pa.scalar(""))
    texts[IS_TEST] = pa.array(["", "false", "FALSE", "False"]).take(
        pa.array(rng.choice(4, size=n, p=(0.5, 0.35, 0.1, 0.05))))
    comment_idx = np.where(rng.random(n) < 0.03, rng.integers(0, len(COMMENTS), n), len(COMMENTS))
    texts["comment"] = pa.array([*COMMENTS, ""]).take(pa.array(comment_idx))
    texts["platform_version"] = pc.if_else(pa.array(bulk.utc < WINDOW_START + 14 * 86400),
                                           pa.scalar("4.2.1"), pa.scalar("4.3.0"))
    texts["source"] = pc.if_else(_pick(rng, n, 0.3), pa.scalar("mobile"), pa.scalar("web"))
    return texts


def copy_texts(rng: np.random.Generator, texts: dict[str, pa.Array], rows: np.ndarray) -> dict[str, pa.Array]:
    """Texts of re-exported copies: identical in every contract column once normalised
    (case of country and e-mail, blanks, ``is_test`` blank vs false, spacing of option items),
    and free to differ in extra columns."""
    n = len(rows)
    idx = pa.array(rows)
    out = {k: v.take(idx) for k, v in texts.items()}
    pick = lambda p: pa.array(rng.random(n) < p)  # noqa: E731
    out["country"] = pc.if_else(pick(0.1), pc.utf8_lower(out["country"]), out["country"])
    out["country"] = pc.if_else(pick(0.05), pc.binary_join_element_wise("  ", out["country"], "", ""),
                                out["country"])
    out[EMAIL] = pc.if_else(pick(0.1), pc.utf8_upper(out[EMAIL]), out[EMAIL])
    swap = pc.if_else(pc.equal(out[IS_TEST], ""), pa.scalar("false"), pa.scalar(""))
    out[IS_TEST] = pc.if_else(pick(0.2), swap, out[IS_TEST])
    out["q1"] = pc.if_else(pick(0.05), pc.replace_substring(out["q1"], ";", "; "), out["q1"])
    out["comment"] = pc.if_else(pick(0.1), pa.scalar("re-exported after platform fix, see ticket 41"),
                                out["comment"])
    return out


# --- the dirty records ---------------------------------------------------------------------

@dataclass
class Counted:
    """Facts of an accepted vote, for the figures."""

    country: str
    years: int
    age_group: str
    library_type: str
    choices: dict[str, tuple[str, ...]]


@dataclass
class DirtyVote:
    slot: str
    values: dict[str, str]
    outcome: str
    group: int
    shape: int = 0                   # fields missing (<0) or added (>0): malformed rows
    counted: Counted | None = None   # set when the record is the accepted one
    id_token: int | None = None      # resolved to a response_id once the bulk size is known


class DirtyVotePlanner:
    """Plans the deliberately dirty records; every record's outcome is decided here."""

    def __init__(self, rr: random.Random, ref: Reference, scale: float):
        self.rr = rr
        self.ref = ref
        self.scale = scale
        self.records: list[DirtyVote] = []
        self.next_token = 0
        self.group = 0
        self.pool = ref.pool
        weights = [COUNTRY_WEIGHTS.get(c, 25 if c in ref.un_members else 6) for c in self.pool]
        self.pool_weights = weights
        self.non_pool = tuple(c for c in ref.country_codes if c not in self.pool)

    def n(self, base: int) -> int:
        return max(1, round(base * self.scale))

    # values -------------------------------------------------------------------------
    def token(self) -> int:
        self.next_token += 1
        return self.next_token - 1

    def offset_of(self, country: str) -> int:
        zones = MULTI_ZONE.get(country)
        if zones:
            return self.rr.choice(zones)
        return COUNTRY_OFFSET.get(country, REGION_OFFSET[self.ref.country_region[country]])

    def base(self, family: str, t: int | None = None, country: str | None = None) -> tuple[dict, Counted]:
        rr = self.rr
        country = country or rr.choices(self.pool, weights=self.pool_weights)[0]
        lang = PRIMARY_LANGUAGE.get(country, "en") if rr.random() < 0.8 else "en"
        lib = rr.choices(LIBRARY_TYPES, weights=LIBTYPE_WEIGHTS)[0]
        ai = rr.choices(range(6), weights=AGE_WEIGHTS)[0]
        years = rr.randint(*YEARS_RANGE[ai])
        t = t if t is not None else rr.randint(WINDOW_START + 6 * 3600, WINDOW_END - 5 * 86400)
        choices = {}
        for q in QUESTIONS:
            k = rr.choice((0, 2, 3, 4, 5, 5, 5)) if q == "Q4" else rr.choice((1, 3, 4, 5, 5, 5))
            choices[q] = tuple(sorted(rr.sample(self.ref.options[q], k)))
        values = {
            "submitted_at": textio.format_timestamp(t, self.offset_of(country)),
            "language": lang, "country": country, "library_type": lib,
            "years_experience": str(years), "age_group": AGE_GROUPS[ai],
            **{QCOLS[i]: ";".join(choices[q]) for i, q in enumerate(QUESTIONS)},
        }
        if family == "A":
            values[EMAIL] = f"{rr.choice(FIRST_NAMES)}{rr.randint(1, 999)}@example.org" if rr.random() < 0.6 else ""
            values[IS_TEST] = rr.choice(("", "false"))
        return values, Counted(country, years, AGE_GROUPS[ai], lib, choices)

    def changed(self, values: dict, counted: Counted, t: int) -> tuple[dict, Counted]:
        """A later, different version of a response (the respondent changed answers)."""
        rr = self.rr
        v = dict(values)
        choices = dict(counted.choices)
        for q in rr.sample(QUESTIONS, 2):
            k = rr.choice((3, 4, 5))
            new = tuple(sorted(rr.sample(self.ref.options[q], k)))
            while new == choices[q]:
                new = tuple(sorted(rr.sample(self.ref.options[q], k)))
            choices[q] = new
            v[QCOLS[QUESTIONS.index(q)]] = ";".join(new)
        years = counted.years
        if rr.random() < 0.5:
            years = min(70, years + 1)
            v["years_experience"] = str(years)
        v["submitted_at"] = textio.format_timestamp(t, self.offset_of(counted.country))
        return v, Counted(counted.country, years, counted.age_group, counted.library_type, choices)

    def add(self, slot: str, values: dict, outcome: str, token: int, counted: Counted | None = None,
            shape: int = 0) -> DirtyVote:
        rec = DirtyVote(slot, values, outcome, self.group, shape, counted if outcome == "accepted" else None,
                        token)
        self.records.append(rec)
        return rec

    def any_slot(self, families: str = "AB") -> tuple[str, str]:
        family = self.rr.choice(families)
        return family, self.rr.choice(FAMILY_SLOTS[family])

    def ordered_slots(self, family: str, k: int) -> list[str]:
        """k distinct slots of a family, in file-name order."""
        return sorted(self.rr.sample(FAMILY_SLOTS[family], k), key=SLOT_ORDER.__getitem__)

    # scenarios ----------------------------------------------------------------------
    def single(self, base: int, outcome: str, variants: list, families: str = "AB") -> None:
        """Records breaking one rule (variants may also break later rules: precedence)."""
        for i in range(self.n(base)):
            self.group += 1
            family, slot = self.any_slot(families)
            values, counted = self.base(family)
            change = variants[i % len(variants)]
            values.update(change(values) if callable(change) else change)
            self.add(slot, values, outcome, self.token(), counted)

    def plan(self) -> list[DirtyVote]:
        rr = self.rr
        t_late = lambda: rr.randint(WINDOW_END + 3600, WINDOW_END + 9 * 86400)  # noqa: E731

        # malformed rows: a field too few (truncated line) or too many (unquoted comma)
        for i in range(self.n(14)):
            self.group += 1
            family, slot = self.any_slot()
            values, _ = self.base(family)
            self.add(slot, values, "malformed_row", self.token(), shape=(-1, 1, -3, 2)[i % 4])

        self.single(14, "missing_required", [
            {"language": ""}, {"country": "   "}, {"library_type": ""}, {"years_experience": ""},
            {"age_group": " "}, {"submitted_at": ""}, {"response_id": ""},
            {"country": "", "submitted_at": "2017-09-31T10:00:00Z", "language": "pt"},
            {"age_group": "", "years_experience": "many"},
        ])
        # response_id blank: the record has no id at all
        for rec in self.records:
            if rec.outcome == "missing_required" and rec.values.get("response_id") == "":
                rec.id_token = None
        self.single(6, "missing_required", [
            {"years_experience": "", IS_TEST: "true"}, {"language": " ", IS_TEST: "TRUE"},
        ], families="A")
        self.single(14, "test_submission", [
            {IS_TEST: "true"}, {IS_TEST: "TRUE"}, {IS_TEST: " True "},
            {IS_TEST: "true", "submitted_at": "2017-09-05 10:00:00+02:00"},
            {IS_TEST: "true", "country": "XX", "years_experience": "99"},
            {IS_TEST: "true", "submitted_at": "2017-08-19T09:00:00+02:00"},
        ], families="A")
        self.single(14, "invalid_timestamp", [
            {"submitted_at": "2017-08-25 14:03:22+02:00"}, {"submitted_at": "2017-08-25T14:03:22"},
            {"submitted_at": "25/08/2017 14:03"}, {"submitted_at": "2017-02-30T10:00:00Z"},
            {"submitted_at": "2017-09-10T25:10:00+02:00"}, {"submitted_at": "2017-09-31T10:00:00Z"},
            {"submitted_at": "yesterday"}, {"submitted_at": "2017-09-05"},
            {"submitted_at": "1504605600"}, {"submitted_at": "2017-9-5T10:00:00Z"},
            {"submitted_at": "2017-09-05T10:00:00 +02:00"}, {"submitted_at": "2017-09-05T10:00:00+2:00"},
            {"submitted_at": "2017-09-06T08:00:00", "language": "pt", "country": "XX"},
        ])
        self.single(14, "outside_voting_window", [
            {"submitted_at": "2017-08-20T23:59:59Z"}, {"submitted_at": "2017-08-21T01:59:59+02:00"},
            {"submitted_at": "2017-10-01T00:00:00Z"}, {"submitted_at": "2017-09-30T22:00:00-02:00"},
            {"submitted_at": "2017-10-03T10:15:00+02:00"}, {"submitted_at": "2017-08-15T09:00:00+02:00"},
            {"submitted_at": "2017-10-01T02:00:00.000+0200"},
            lambda v: {"submitted_at": textio.format_timestamp(t_late(), -240)},
            {"submitted_at": "2016-09-01T12:00:00Z", "country": "XX", "years_experience": "-4"},
        ])
        self.single(16, "unknown_code", [
            {"language": "pt"}, {"language": "EN"}, {"language": "english"}, {"country": "XX"},
            {"country": "UK"}, {"country": "FRA"}, {"country": "EU"}, {"library_type": "university"},
            {"library_type": "Public"}, {"age_group": "25-34"}, {"age_group": "18_24"},
            {"country": "ZZ", "years_experience": "200", "q1": "Q9-01"},
        ])
        self.single(4, "unknown_code", [{IS_TEST: "yes"}, {IS_TEST: "1"}, {IS_TEST: "no"}], families="A")
        self.single(14, "invalid_experience", [
            {"years_experience": "-1"}, {"years_experience": "71"}, {"years_experience": "12.5"},
            {"years_experience": "ten"}, {"years_experience": "1e1"}, {"years_experience": "15 years"},
            {"years_experience": "+5"}, {"years_experience": "12,5"}, {"years_experience": "100"},
            {"years_experience": "99", "q1": "Q1-99"},
        ])
        self.single(14, "invalid_choice", [
            {"q1": "Q2-01;Q1-02"}, {"q2": "Q2-04;Q2-04"}, {"q3": ";".join(f"Q3-0{i}" for i in range(1, 7))},
            {"q5": "Q5-11"}, {"q6": "q6-01"}, {"q4": "Q4-1"}, {"q1": "Q1-01,Q1-02"},
            {"q5": "Q5-02;Q5-03;Q5-02"}, {"q6": "Q6-01;Q6-02;Q6-03;Q6-04;Q6-05;Q6-06"},
        ])
        self._edge_accepted()
        self._versions()
        self._missing_column()
        return self.records

    def _edge_accepted(self) -> None:
        """Accepted records on the edges the contract decides (window bounds, normalisation)."""
        rr = self.rr
        edges = [
            ("AB", {"submitted_at": "2017-08-21T00:00:00Z"}),
            ("AB", {"submitted_at": "2017-08-21T02:00:00+02:00"}),
            ("AB", {"submitted_at": "2017-09-30T23:59:59Z"}),
            ("AB", {"submitted_at": "2017-10-01T01:59:59+02:00"}),
            ("AB", {"submitted_at": "2017-09-30T20:30:00-03:00"}),
            ("AB", {"submitted_at": "2017-08-20T22:30:00-04:00"}),
            ("AB", {"submitted_at": "2017-09-10T12:30+0530"}),
            ("AB", {"submitted_at": "2017-09-12T08:15:30.250Z"}),
            ("AB", {"years_experience": "07"}),
            ("AB", {"years_experience": " 70 "}),
            ("AB", {"years_experience": "0"}),
            ("A", {IS_TEST: "False"}),
            ("A", {IS_TEST: " FALSE "}),
        ]
        for i in range(self.n(13)):
            self.group += 1
            families, change = edges[i % len(edges)]
            family, slot = self.any_slot(families)
            values, counted = self.base(family)
            values.update(change)
            if "years_experience" in change:
                counted.years = int(change["years_experience"].strip())
            self.add(slot, values, "accepted", self.token(), counted)
        for i in range(self.n(6)):
            self.group += 1
            family, slot = self.any_slot()
            values, counted = self.base(family)
            variant = i % 3
            if variant == 0:
                values["country"] = f" {counted.country.lower()} "
            elif variant == 1 and counted.choices["Q1"]:
                values["q1"] = " ; ".join(counted.choices["Q1"]) + ";"
            else:
                values["q2"] = ";;".join(counted.choices["Q2"])
                values["language"] = f" {values['language']}"
            self.add(slot, values, "accepted", self.token(), counted)

    def _versions(self) -> None:
        """Overlapping re-exports: superseded versions and duplicate copies of one response."""
        rr = self.rr

        def times(gap_max: int = 3 * 86400) -> tuple[int, int]:
            t1 = rr.randint(WINDOW_START + 3600, WINDOW_END - 6 * 86400)
            return t1, t1 + rr.randint(60, gap_max)

        def trap(values: dict) -> dict:
            # a losing version may name a country nobody else names: counting it is a bug
            if rr.random() < 0.5:
                values = dict(values, country=rr.choice(self.non_pool))
            return values

        # a newer version in a later file
        for _ in range(self.n(4)):
            self.group += 1
            fam = rr.choice("AB")
            x, y = self.ordered_slots(fam, 2)
            t1, t2 = times()
            v1, c1 = self.base(fam, t1)
            v2, c2 = self.changed(v1, c1, t2)
            tok = self.token()
            self.add(x, trap(v1), "superseded", tok)
            self.add(y, v2, "accepted", tok, c2)
        # a newer version in an earlier file: the latest submitted_at wins, not the file
        for _ in range(self.n(4)):
            self.group += 1
            fam = rr.choice("AB")
            x, y = self.ordered_slots(fam, 2)
            t1, t2 = times()
            v1, c1 = self.base(fam, t1)
            v2, c2 = self.changed(v1, c1, t2)
            tok = self.token()
            self.add(x, v2, "accepted", tok, c2)
            self.add(y, trap(v1), "superseded", tok)
        # same submitted_at, different values, different files: the later file wins
        for i in range(self.n(3)):
            self.group += 1
            fam = rr.choice("AB")
            x, y = self.ordered_slots(fam, 2)
            t1, _ = times()
            v1, c1 = self.base(fam, t1)
            v2, c2 = self.changed(v1, c1, t1)
            if i % 3 == 2:  # the same instant written in UTC
                v2["submitted_at"] = textio.format_timestamp(t1, 0, textio.TS_ZULU)
            tok = self.token()
            self.add(x, v1, "superseded", tok)
            self.add(y, v2, "accepted", tok, c2)
        # same submitted_at, same file: the later record wins
        for _ in range(self.n(3)):
            self.group += 1
            fam = rr.choice("AB")
            (x,) = self.ordered_slots(fam, 1)
            t1, _ = times()
            v1, c1 = self.base(fam, t1)
            v2, c2 = self.changed(v1, c1, t1)
            tok = self.token()
            self.add(x, v1, "superseded", tok)
            self.add(x, v2, "accepted", tok, c2)
        # the newer version is itself invalid: quarantined, the older one stays accepted
        breaks = [
            ("invalid_choice", {"q2": "Q2-04;Q2-04;Q2-01"}),
            ("invalid_experience", {"years_experience": "150"}),
            ("unknown_code", {"library_type": "university"}),
            ("outside_voting_window", None),
            ("missing_required", {"age_group": ""}),
            ("test_submission", {IS_TEST: "true"}),
        ]
        for i in range(self.n(6)):
            self.group += 1
            reason, change = breaks[i % len(breaks)]
            fam = "A" if reason == "test_submission" else rr.choice("AB")
            x, y = self.ordered_slots(fam, 2)
            t1, t2 = times()
            v1, c1 = self.base(fam, t1)
            if reason == "outside_voting_window":
                t2 = rr.randint(WINDOW_END, WINDOW_END + 3 * 86400)
            v2, _ = self.changed(v1, c1, t2)
            v2.update(change or {})
            tok = self.token()
            self.add(x, v1, "accepted", tok, c1)
            self.add(y, v2, reason, tok)
        # an older version delivered twice, then a newer one: both old copies are superseded
        for _ in range(self.n(3)):
            self.group += 1
            fam = rr.choice("AB")
            slots = self.ordered_slots(fam, 3)
            rr.shuffle(slots)
            t1, t2 = times()
            v1, c1 = self.base(fam, t1)
            v2, c2 = self.changed(v1, c1, t2)
            tok = self.token()
            self.add(slots[0], v1, "superseded", tok)
            self.add(slots[1], dict(v1), "superseded", tok)
            self.add(slots[2], v2, "accepted", tok, c2)
        # the winning version delivered twice plus an older one
        for _ in range(self.n(3)):
            self.group += 1
            fam = rr.choice("AB")
            x, y, z = self.ordered_slots(fam, 3)
            first, second = sorted(rr.sample((x, y, z), 2), key=SLOT_ORDER.__getitem__)
            older = ({x, y, z} - {first, second}).pop()
            t1, t2 = times()
            v1, c1 = self.base(fam, t1)
            v2, c2 = self.changed(v1, c1, t2)
            tok = self.token()
            self.add(first, v2, "accepted", tok, c2)
            self.add(second, dict(v2), "duplicate", tok)
            self.add(older, trap(v1), "superseded", tok)
        # identical once normalised (case, blanks, is_test, option spacing): duplicates
        for i in range(self.n(5)):
            self.group += 1
            fam = "A" if i % 5 in (0, 1) else rr.choice("AB")
            x, y = self.ordered_slots(fam, 2)
            if i % 5 == 4:
                y = x  # twice in the same file
            v, c = self.base(fam)
            copy = dict(v)
            variant = i % 5
            if variant == 0:
                v[EMAIL] = f"{rr.choice(FIRST_NAMES)}{rr.randint(1, 999)}@example.org"
                copy[EMAIL] = v[EMAIL].upper()
                copy[IS_TEST] = "FALSE" if v[IS_TEST] == "" else ""
            elif variant == 1:
                copy[IS_TEST] = " false " if v[IS_TEST] else ""
                copy["comment"] = "second export, same answers"
            elif variant == 2:
                copy["country"] = f" {c.country.lower()} "
                copy["language"] = f"{v['language']} "
            elif variant == 3:
                copy["q1"] = " ; ".join(c.choices["Q1"]) + ";"
            tok = self.token()
            self.add(x, v, "accepted", tok, c)
            self.add(y, copy, "duplicate", tok)

    def _missing_column(self) -> None:
        """A partner's import without the age_group column: every record is missing_column."""
        rr = self.rr
        winners = [r for r in self.records if r.outcome == "accepted" and r.id_token is not None]
        for i in range(self.n(24)):
            self.group += 1
            values, counted = self.base("M")
            token = self.token()
            if i % 8 == 3 and winners:
                # a newer version of an accepted response: still quarantined, wins nothing
                won = rr.choice(winners)
                token = won.id_token
                values["submitted_at"] = textio.format_timestamp(WINDOW_END - 3600, 0, textio.TS_ZULU)
            if i % 8 == 5:
                values["comment"] = "Imported from the partner survey,\nplease check"
            self.add("M", values, "missing_column", token)


# --- writing -------------------------------------------------------------------------------

@dataclass
class WrittenFile:
    name: str                      # path relative to landing/
    spec: VoteFileSpec
    records: int
    outcomes: dict[str, int]
    size: int = 0
    not_accepted: list[tuple[int, str]] = field(default_factory=list)  # (record number, outcome)


def _parts(n_rows: int) -> int:
    return max(1, -(-n_rows // MAX_ROWS_PER_FILE))


def _dirty_text(rec: DirtyVote, spec: VoteFileSpec, ids: dict[int, str]) -> str:
    values = dict(rec.values)
    values["response_id"] = ids[rec.id_token] if rec.id_token is not None else values.get("response_id", "")
    fields = [values.get(c, "") for c in spec.columns]
    if rec.shape < 0:
        fields = fields[: rec.shape]
    elif rec.shape > 0:
        fields[-1] = fields[-1] or "thanks"
        fields += ["and more", "so much"][: rec.shape]
    return textio.csv_line(fields, spec.quote_all, spec.eol)


FREE_TEXT = frozenset({"comment"})  # the only columns whose values may need quoting


def file_lines(cols: dict[str, pa.Array], spec: VoteFileSpec) -> pa.Array:
    """CSV record texts (with line ending) of bulk rows, in the file's column order."""
    if spec.quote_all:
        fields = [pc.replace_substring(cols[c], '"', '""') if c in FREE_TEXT else cols[c] for c in spec.columns]
        inner = pc.binary_join_element_wise(*fields, '","')
        return pc.binary_join_element_wise('"', inner, '"' + spec.eol, "")
    fields = [textio.csv_quote_needed(cols[c]) if c in FREE_TEXT else cols[c] for c in spec.columns]
    fields[-1] = pc.binary_join_element_wise(fields[-1], spec.eol, "")
    return pc.binary_join_element_wise(*fields, ",")


def write_votes(votes_dir: Path, rng: np.random.Generator, ref: Reference, bulk: VoteBulk,
                dirty: list[DirtyVote], ids: dict[int, str]) -> list[WrittenFile]:
    """Write every votes file; returns what each holds (records and intended outcomes)."""
    texts = bulk_texts(rng, ref, bulk)
    written: list[WrittenFile] = []
    for spec in FILE_SPECS:
        # bulk rows of this file: its weeks (a slice: rows are in time order), or
        # re-exported copies (id order)
        if spec.weeks:
            start, stop = np.searchsorted(bulk.week, [min(spec.weeks), max(spec.weeks) + 1])
            cols = {c: texts[c].slice(start, stop - start) for c in spec.columns}
            n_rows = int(stop - start)
            outcome_bulk = "accepted"
        elif spec.slot in COPY_SLOT.values():
            weeks = [w for s in FILE_SPECS if s.family == spec.family for w in s.weeks]
            rows = np.flatnonzero(bulk.copied & np.isin(bulk.week, weeks))
            rows = rows[np.argsort(bulk.id_number[rows], kind="stable")]
            cols = copy_texts(rng, texts, rows)
            n_rows = len(rows)
            outcome_bulk = "duplicate"
        else:
            cols, n_rows, outcome_bulk = {}, 0, "accepted"
        mine = [r for r in dirty if r.slot == spec.slot]
        n_parts = _parts(n_rows)
        bounds = np.linspace(0, n_rows, n_parts + 1).astype(np.int64)
        for p in range(n_parts):
            name = f"votes/{spec.stem}.csv" if n_parts == 1 else f"votes/{spec.stem}_{p + 1:02d}.csv"
            n_bulk = int(bounds[p + 1] - bounds[p])
            lines = (file_lines({c: cols[c].slice(bounds[p], n_bulk) for c in spec.columns}, spec)
                     if n_bulk else pa.array([], pa.string()))
            part_dirty = [r for r in mine if r.group % n_parts == p]
            # dirty records at random places, keeping their planned order
            at = np.sort(rng.integers(0, n_bulk + 1, len(part_dirty)))
            segments: list = []
            prev = 0
            for pos, rec in zip(at.tolist(), part_dirty):
                segments.append(lines.slice(prev, pos - prev))
                segments.append(_dirty_text(rec, spec, ids))
                prev = pos
            segments.append(lines.slice(prev, n_bulk - prev))
            header = textio.csv_line(list(spec.header), False, spec.eol)
            prefix = (b"\xef\xbb\xbf" if spec.bom else b"") + header.encode("utf-8")
            size = textio.write_segments(votes_dir.parent / name, segments, prefix)
            outcomes: dict[str, int] = {}
            if n_bulk:
                outcomes[outcome_bulk] = n_bulk
            for r in part_dirty:
                outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
            # record numbers (1-based): a dirty record goes before bulk row ``at``
            listing = [(int(a) + i + 1, r.outcome) for i, (a, r) in enumerate(zip(at, part_dirty))
                       if r.outcome != "accepted"]
            if outcome_bulk != "accepted" and n_bulk:
                j = np.arange(n_bulk)
                numbers = j + 1 + np.searchsorted(at, j, side="right")
                listing += [(int(x), outcome_bulk) for x in numbers]
            written.append(WrittenFile(name, spec, n_bulk + len(part_dirty), outcomes, size, sorted(listing)))
    return written
