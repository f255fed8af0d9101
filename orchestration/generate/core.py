"""The reference landing zone: plan, calibrate, write, and the answer key.

The answer key is computed from the generation plan (every record's intended outcome and
the facts of what is meant to be accepted), never by reading the written files back.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from orchestration.generate import votes as v
from orchestration.generate import workshops as w
from orchestration.generate.reference import (
    AGE_GROUPS,
    KINDS,
    LIBRARY_TYPES,
    QUESTIONS,
    REGIONS,
    VOTE_OUTCOMES,
    WORKSHOP_OUTCOMES,
    Reference,
    load_reference,
)

GENERATOR_VERSION = 1
OUTCOME_LISTING = "expected_outcomes.csv"
# Published figures (scale 1); the experience total scales with the participants.
REF_VOTES, REF_WORKSHOPS, REF_WS_PARTICIPANTS = 21772, 185, 9291
REF_PARTICIPANTS, REF_EXPERIENCE = 31063, 469152


def _targets(ref: Reference, scale: float) -> dict[str, int]:
    fig = ref.figures
    return {"votes": max(1, round(fig["votes"] * scale)),
            "workshops": max(1, round(fig["workshops"] * scale)),
            "workshop_participants": max(0, round(fig["workshop_participants"] * scale))}


def _experience_target(ref: Reference, participants: int) -> int:
    """The published mean experience applied to ``participants`` (integer arithmetic:
    exactly the published total at scale 1)."""
    fig = ref.figures
    return int((fig["library_experience_years"] * participants * 2 + fig["participants"])
               // (2 * fig["participants"]))


def _adjust_years(rng: np.random.Generator, years: np.ndarray, lo: np.ndarray, hi: np.ndarray, delta: int) -> None:
    """Add or remove single years on random people (within their plausible range, else
    within 0..70) until the total moves by ``delta``, or as far as 0..70 allows (only
    tiny scales, where the hand-planned records outweigh the bulk, run out of room)."""
    widened = False
    while delta != 0:
        step = 1 if delta > 0 else -1
        cand = np.flatnonzero(years < hi) if step > 0 else np.flatnonzero(years > lo)
        if cand.size == 0:
            if widened:
                return
            lo[:], hi[:] = 0, 70
            widened = True
            continue
        k = min(abs(delta), cand.size)
        pick = cand[rng.permutation(cand.size)[:k]] if k < cand.size else cand
        years[pick] += step
        delta -= step * k


def _prepare(out_dir: Path, overwrite: bool) -> tuple[Path, Path]:
    landing = out_dir / "landing"
    votes_dir, ws_dir = landing / "votes", landing / "workshops"
    existing = [p for d in (votes_dir, ws_dir) if d.exists() for p in d.iterdir()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{landing} already holds landing files; generate into an empty directory or pass overwrite=True")
    for d in (votes_dir, ws_dir):
        if d.exists() and overwrite:
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)
    return votes_dir, ws_dir


def generate_landing_zone(out_dir: Path, scale: float = 1.0, seed: int = 2017, *,
                          overwrite: bool = False) -> dict:
    """Write ``out_dir/landing/votes/*.csv``, ``out_dir/landing/workshops/*.jsonl`` and the
    answer key ``out_dir/expected.json``; returns the answer key.

    ``scale`` multiplies the volume (1.0 reproduces the published figures exactly); the
    output is byte-for-byte the same for the same scale and seed. ``overwrite`` replaces
    the landing folders' content, otherwise they must be empty.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    out_dir = Path(out_dir)
    ref = load_reference()
    seq = np.random.SeedSequence([int(seed), GENERATOR_VERSION])
    s_votes, s_votes_w, s_ws, s_ws_w, s_adjust, s_rv, s_rw = seq.spawn(7)
    rr_votes = random.Random(int(s_rv.generate_state(1)[0]))
    rr_ws = random.Random(int(s_rw.generate_state(1)[0]))
    targets = _targets(ref, scale)

    # --- plan ---------------------------------------------------------------------------
    dirty_votes = v.DirtyVotePlanner(rr_votes, ref, scale).plan()
    accepted_dirty = [r for r in dirty_votes if r.outcome == "accepted"]
    n_bulk = max(0, targets["votes"] - len(accepted_dirty))
    rng_votes = np.random.default_rng(s_votes)
    bulk_ids = 10_000_000 + rng_votes.permutation(n_bulk)
    token_ids = {t: v.response_id(10_000_000 + n_bulk + t) for t in range(max(
        [r.id_token for r in dirty_votes if r.id_token is not None], default=-1) + 1)}
    vbulk = v.plan_bulk(rng_votes, ref, n_bulk, bulk_ids)

    rng_ws = np.random.default_rng(s_ws)
    n_ws = targets["workshops"]
    n_incomplete = max(1, round(8 * scale))
    numbers = 1 + rng_ws.permutation(n_ws + n_incomplete)
    wbulk = w.plan_bulk(rng_ws, ref, n_ws, targets["workshop_participants"], numbers[:n_ws])

    # --- calibrate: the experience total ------------------------------------------------
    years = np.concatenate([vbulk.years, wbulk.ci_years])
    ages = np.concatenate([vbulk.age_group, wbulk.ci_age])
    lo = np.zeros(len(years), dtype=np.int64)
    hi = np.minimum(np.array([r[1] for r in v.YEARS_RANGE])[ages] + 6, 70)
    fixed = sum(r.counted.years for r in accepted_dirty)
    target = _experience_target(ref, len(years) + len(accepted_dirty))
    _adjust_years(np.random.default_rng(s_adjust), years, lo, hi, target - fixed - int(years.sum()))
    vbulk.years = years[:n_bulk]
    wbulk.ci_years = years[n_bulk:]

    # dirty workshop events copy facts of bulk check-ins: planned once those are final
    planner = w.DirtyWorkshopPlanner(rr_ws, ref, wbulk, scale, [int(x) for x in numbers[n_ws:]])
    dirty_events = planner.plan()

    # --- write ----------------------------------------------------------------------------
    votes_dir, ws_dir = _prepare(out_dir, overwrite)
    vote_files = v.write_votes(votes_dir, np.random.default_rng(s_votes_w), ref, vbulk, dirty_votes, token_ids)
    rng_ws_w = np.random.default_rng(s_ws_w)
    table, names = w.build_event_table(rng_ws_w, wbulk, planner)
    ws_files = w.write_workshops(ws_dir.parent, rng_ws_w, ref, wbulk, table, names, dirty_events)

    key = answer_key(ref, scale, seed, vbulk, accepted_dirty, wbulk, planner, vote_files, ws_files)
    write_outcome_listing(out_dir / OUTCOME_LISTING, vote_files, ws_files)
    (out_dir / "expected.json").write_text(json.dumps(key, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return key


def write_outcome_listing(path: Path, vote_files: list, ws_files: list) -> None:
    """Every record whose planned outcome is not ``accepted``: the detail behind the counts.

    ``record`` is the 1-based data record of a CSV file (a quoted field may span lines)
    and the 1-based physical line of a JSONL file (blank lines counted, never listed).
    """
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["source", "file_name", "record", "outcome"])
        for source, files in (("votes", vote_files), ("workshops", ws_files)):
            for wf in sorted(files, key=lambda x: x.name.encode()):
                out.writerows((source, wf.name, n, o) for n, o in wf.not_accepted)


# --- the answer key ----------------------------------------------------------------------------

def _top(counts: dict[str, int]) -> str | None:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[0][0] if ranked and ranked[0][1] > 0 else None


def answer_key(ref: Reference, scale: float, seed: int, vb: v.VoteBulk, accepted_dirty: list,
               wb: w.WorkshopBulk, planner: w.DirtyWorkshopPlanner, vote_files: list, ws_files: list) -> dict:
    codes = np.array(ref.country_codes)
    counted = [r.counted for r in accepted_dirty]

    # votes: option counts, globally and by region
    region_of = {c: ref.country_region[c] for c in ref.country_codes}
    by_option = {q: {o: 0 for o in ref.options[q]} for q in QUESTIONS}
    by_region_option = {r: {q: {o: 0 for o in ref.options[q]} for q in QUESTIONS} for r in REGIONS}
    answering = {q: 0 for q in QUESTIONS}
    for q in QUESTIONS:
        mask = vb.masks[q]
        answering[q] += int((mask != 0).sum())
        for j, o in enumerate(ref.options[q]):
            bit = (mask >> j) & 1
            by_option[q][o] += int(bit.sum())
            per_region = np.bincount(vb.region, weights=bit, minlength=len(REGIONS))
            for ri, r in enumerate(REGIONS):
                by_region_option[r][q][o] += int(per_region[ri])
        for c in counted:
            answering[q] += bool(c.choices[q])
            for o in c.choices[q]:
                by_option[q][o] += 1
                by_region_option[region_of[c.country]][q][o] += 1

    vote_countries = set(codes[np.unique(vb.country)].tolist()) | {c.country for c in counted}
    ci_countries = set(codes[np.unique(wb.ci_country)].tolist())
    countries = vote_countries | ci_countries
    n_votes = vb.n + len(counted)
    n_wp = len(wb.ci_ws)
    experience = int(vb.years.sum()) + int(wb.ci_years.sum()) + sum(c.years for c in counted)
    age_groups = ({AGE_GROUPS[i] for i in np.unique(vb.age_group)} | {c.age_group for c in counted}
                  | {AGE_GROUPS[i] for i in np.unique(wb.ci_age)})
    lib_types = ({LIBRARY_TYPES[i] for i in np.unique(vb.library_type)} | {c.library_type for c in counted}
                 | {LIBRARY_TYPES[i] for i in np.unique(wb.ci_lib)})
    figures = {
        "votes": n_votes,
        "workshops": wb.n,
        "workshop_participants": n_wp,
        "participants": n_votes + n_wp,
        "library_experience_years": experience,
        "un_member_states": len(countries & ref.un_members),
        "countries_and_areas": len(countries),
        "age_groups_represented": len(age_groups),
        "library_types_represented": len(lib_types),
        "regions_represented": len({region_of[c] for c in countries}),
    }

    # workshops: Borda points of the winning answers at counting workshops
    borda = {q: {o: 0 for o in ref.options[q]} for q in QUESTIONS}
    points = 6 - wb.an_rank
    for qi, q in enumerate(QUESTIONS):
        sel = wb.an_q == qi
        sums = np.bincount(wb.an_final[sel], weights=points[sel], minlength=10)
        for j, o in enumerate(ref.options[q]):
            borda[q][o] = int(sums[j])

    def totals(files, names):
        out = dict.fromkeys(names, 0)
        for f in files:
            for k, n in f.outcomes.items():
                out[k] += n
        return out

    files = {}
    for f in vote_files:
        files[f.name] = {"records": f.records, "outcomes": dict(sorted(f.outcomes.items())),
                         "bytes": f.size, "bom": f.spec.bom,
                         "line_ending": "crlf" if f.spec.eol == "\r\n" else "lf",
                         "extra_columns": list(f.spec.extra_columns),
                         "missing_columns": list(f.spec.missing_columns)}
    for f in ws_files:
        files[f.name] = {"records": f.records, "outcomes": dict(sorted(f.outcomes.items())), "bytes": f.size}

    mismatched = sorted(wb.ws_id(i) for i in np.flatnonzero(wb.reported != wb.size))
    region_votes = Counter({r: int(n) for r, n in zip(REGIONS, np.bincount(vb.region, minlength=len(REGIONS)))})
    region_votes.update(region_of[c.country] for c in counted)
    return {
        "generator": {"version": GENERATOR_VERSION, "scale": scale, "seed": seed,
                      "outcome_listing": OUTCOME_LISTING},
        "figures": figures,
        "outcomes": {"votes": totals(vote_files, VOTE_OUTCOMES), "workshops": totals(ws_files, WORKSHOP_OUTCOMES)},
        "records": {"votes": sum(f.records for f in vote_files), "workshops": sum(f.records for f in ws_files)},
        "top_option_by_votes": {q: _top(by_option[q]) for q in QUESTIONS},
        "top_option_by_workshops": {q: _top(borda[q]) for q in QUESTIONS},
        "top_option_by_votes_by_region": {r: {q: _top(by_region_option[r][q]) for q in QUESTIONS} for r in REGIONS},
        "votes_by_option": by_option,
        "votes_answering": answering,
        "workshop_borda_points": borda,
        "votes_by_region": {r: region_votes[r] for r in REGIONS},
        "workshops_by_kind": {k: int((wb.kind == i).sum()) for i, k in enumerate(KINDS)},
        "incomplete_workshops": sorted(planner.incomplete_ids),
        "participant_count_mismatches": mismatched,
        "files": files,
    }
