"""The published datasets: which mart each one comes from, its grain and its privacy rules.

This list is the export contract. Column names and descriptions are not repeated here:
they come from the marts themselves and from the dbt docs (``target/manifest.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DatasetKind = Literal["fact", "dimension", "report"]


@dataclass(frozen=True)
class Suppression:
    """Small-cell suppression of an aggregate that counts people.

    Outside the global scope, a row whose count is below ``GVW_MIN_CELL`` has its count
    columns and every value derived from them set to null, and ``suppressed`` true.
    """

    count_columns: tuple[str, ...]
    derived_columns: tuple[str, ...]
    scope_column: str
    global_scope: str


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    model: str
    kind: DatasetKind
    # Used when the dbt model has no ``meta.grain``.
    grain: str
    # Low-cardinality columns to partition by (first one present wins) once the dataset
    # passes the partitioning threshold; empty = never partitioned.
    partition_candidates: tuple[str, ...] = ()
    suppression: Suppression | None = None


SUPPRESSED_COLUMN = "suppressed"
SUPPRESSED_DESCRIPTION = (
    "True when this row's vote count is below the minimum cell size (GVW_MIN_CELL) outside "
    "the global scope: votes, vote_share and vote_rank are then null. Global rows are never suppressed."
)

# Every export column is checked against this; a match stops the publish (privacy).
# E-mail addresses, the vote platform's response id, the workshop tool's participant
# reference and raw record text are direct identifiers (or may contain one).
FORBIDDEN_COLUMN_PATTERN = r"(e[_-]?mail|response[_-]?id|participant[_-]?ref|record[_-]?text)"

_THEME_SUPPRESSION = Suppression(
    count_columns=("votes",),
    # the share and the rank are computed from the count: they would reveal it
    derived_columns=("vote_share", "vote_rank"),
    scope_column="scope_type",
    global_scope="global",
)

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec("headline_figures", "rpt_headline_figures", "report",
                "One row: the consultation's headline figures (global, never suppressed)."),
    DatasetSpec("theme_rankings", "fct_theme_rankings", "report",
                "One row per scope (scope_type, scope_value), question and option.",
                suppression=_THEME_SUPPRESSION),
    DatasetSpec("participation", "fct_participation", "fact",
                "One row per participant: every vote and every distinct check-in at a counting workshop.",
                partition_candidates=("region_code", "channel")),
    DatasetSpec("votes", "fct_votes", "fact", "One row per vote (accepted response).",
                partition_candidates=("region_code", "language_code")),
    DatasetSpec("vote_choices", "fct_vote_choices", "fact", "One row per option chosen in a vote.",
                partition_candidates=("question_code", "region_code")),
    DatasetSpec("workshops", "fct_workshops", "fact", "One row per workshop that counts.",
                partition_candidates=("region_code",)),
    DatasetSpec("workshop_answers", "fct_workshop_answers", "fact",
                "One row per ranked answer of a counting workshop (workshop, question, rank).",
                partition_candidates=("question_code",)),
    DatasetSpec("quarantine_summary", "rpt_quarantine_summary", "report",
                "One row per source and non-accepted outcome (record counts, not people: not suppressed)."),
    DatasetSpec("country", "dim_country", "dimension", "One row per ISO 3166-1 country or area."),
    DatasetSpec("region", "dim_region", "dimension", "One row per IFLA region."),
    DatasetSpec("question", "dim_question", "dimension", "One row per question."),
    DatasetSpec("option", "dim_option", "dimension", "One row per option of a question."),
    DatasetSpec("library_type", "dim_library_type", "dimension", "One row per library type."),
    DatasetSpec("age_group", "dim_age_group", "dimension", "One row per age group."),
    DatasetSpec("experience_band", "dim_experience_band", "dimension", "One row per band of years of experience."),
    DatasetSpec("language", "dim_language", "dimension", "One row per language of the consultation."),
)


def dataset_by_name(name: str) -> DatasetSpec:
    for spec in DATASETS:
        if spec.name == name:
            return spec
    raise KeyError(name)
