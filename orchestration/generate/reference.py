"""Reference data and static tables of the generator.

Codes come from the project's own seeds (``countries.csv``, ``options.csv``) and the
published figures from ``orchestration/reference/reference_figures.json``; everything
else here is the generator's own plausibility data (weights, time zones, cities).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT

LANGUAGES = ("ar", "zh", "en", "fr", "de", "ru", "es")
LIBRARY_TYPES = ("national", "academic", "public", "school", "special", "other")
AGE_GROUPS = ("under_25", "25_34", "35_44", "45_54", "55_64", "65_plus")
REGIONS = (
    "africa", "asia_oceania", "europe", "latin_america_caribbean",
    "middle_east_north_africa", "north_america",
)
KINDS = ("kickoff", "regional", "professional_unit", "national", "self_facilitated")
QUESTIONS = ("Q1", "Q2", "Q3", "Q4", "Q5", "Q6")

VOTE_REASONS = (
    "malformed_row", "missing_required", "test_submission", "invalid_timestamp",
    "outside_voting_window", "unknown_code", "invalid_experience", "invalid_choice",
    "missing_column",
)
VOTE_OUTCOMES = ("accepted", *VOTE_REASONS, "duplicate", "superseded")
WORKSHOP_REASONS = (
    "malformed_json", "missing_required", "unknown_event_type", "invalid_timestamp",
    "unknown_code", "invalid_experience", "invalid_choice", "invalid_date",
)
WORKSHOP_OUTCOMES = ("accepted", *WORKSHOP_REASONS, "duplicate", "superseded", "incomplete_workshop")

# Countries that took part (213 = 190 UN members + 23 areas); the UN members left
# out are the three least plausible participants.
ABSENT_UN_MEMBERS = ("ER", "KP", "TM")
PARTICIPATING_AREAS = (
    "AW", "BM", "CK", "CW", "FO", "GF", "GI", "GL", "GP", "GU", "HK", "IM",
    "JE", "KY", "MO", "MQ", "NC", "PF", "PR", "PS", "RE", "TW", "VA",
)

# Relative number of respondents per country (default: 25 for a UN member, 6 for an area).
COUNTRY_WEIGHTS = {
    "US": 2300, "CA": 420, "GB": 700, "DE": 900, "FR": 800, "ES": 560, "IT": 650, "RU": 850,
    "PL": 420, "NL": 330, "SE": 300, "NO": 220, "DK": 200, "FI": 240, "UA": 260, "PT": 180,
    "GR": 200, "CZ": 170, "HU": 150, "RO": 160, "BE": 180, "CH": 170, "AT": 150, "IE": 110,
    "CN": 1000, "JP": 320, "IN": 520, "AU": 420, "NZ": 140, "KR": 200, "ID": 260, "PH": 230,
    "MY": 180, "SG": 150, "TH": 140, "VN": 120, "PK": 150, "BD": 120, "LK": 90, "NP": 70,
    "KZ": 90, "TW": 80, "HK": 70, "BR": 520, "MX": 420, "AR": 320, "CL": 180, "CO": 220,
    "PE": 150, "CU": 80, "JM": 60, "TT": 40, "VE": 80, "EC": 70, "UY": 60, "PR": 30,
    "NG": 420, "KE": 320, "ZA": 330, "GH": 200, "UG": 160, "TZ": 150, "ET": 120, "CM": 140,
    "SN": 90, "CI": 80, "ZW": 90, "ZM": 70, "BW": 60, "MW": 60, "RW": 50, "NA": 50,
    "EG": 260, "MA": 140, "SA": 160, "TN": 110, "DZ": 110, "JO": 80, "LB": 80, "AE": 90,
    "QA": 60, "OM": 50, "KW": 50, "IR": 130, "IL": 70, "IQ": 60, "PS": 40, "SD": 50,
}

# Main language of a country; everything else defaults to English.
PRIMARY_LANGUAGE = {
    **dict.fromkeys("CN TW HK MO".split(), "zh"),
    **dict.fromkeys("RU BY KZ KG TJ UZ TM AM AZ MD GE".split(), "ru"),
    **dict.fromkeys(
        "FR BE CH LU MC SN CI CM ML BF NE TD GA CG CD BJ TG GN MG BI RW DJ KM CF HT RE "
        "GP MQ GF NC PF MU SC".split(), "fr"),
    **dict.fromkeys("DE AT LI".split(), "de"),
    **dict.fromkeys(
        "ES MX AR CL CO PE VE EC BO PY UY CR PA GT HN SV NI CU DO PR GQ".split(), "es"),
    **dict.fromkeys(
        "AE BH DZ EG IQ JO KW LB LY MA MR OM PS QA SA SD SY TN YE".split(), "ar"),
}
# Second language (default English; English-speaking countries default French).
SECONDARY_LANGUAGE = {
    **dict.fromkeys("DZ MA TN LB MR".split(), "fr"),
    **dict.fromkeys("BR".split(), "es"),
    **dict.fromkeys("UA".split(), "ru"),
}

# UTC offset in minutes during Aug/Sep 2017; by region when not listed.
REGION_OFFSET = {
    "africa": 60, "asia_oceania": 480, "europe": 120, "latin_america_caribbean": -180,
    "middle_east_north_africa": 180, "north_america": -240,
}
COUNTRY_OFFSET = {
    "GB": 60, "IE": 60, "PT": 60, "IS": 0, "FO": 60, "IM": 60, "JE": 60, "GG": 60,
    "RU": 180, "BY": 180, "GR": 180, "FI": 180, "UA": 180, "RO": 180, "BG": 180, "EE": 180,
    "LV": 180, "LT": 180, "MD": 180, "CY": 180, "TR": 180, "GE": 240, "AM": 240, "AZ": 300,
    "US": -240, "CA": -240, "BM": -180, "GL": -120, "MX": -300, "BR": -180, "AR": -180,
    "CL": -180, "CO": -300, "PE": -300, "EC": -300, "CU": -240, "JM": -300, "PA": -300,
    "GT": -360, "HN": -360, "SV": -360, "NI": -360, "CR": -360, "VE": -240, "BO": -240,
    "DO": -240, "PR": -240, "HT": -240, "TT": -240, "GY": -240,
    "IN": 330, "LK": 330, "NP": 345, "BD": 360, "BT": 360, "MM": 390, "PK": 300, "AF": 270,
    "KZ": 360, "KG": 360, "UZ": 300, "TJ": 300, "MV": 300, "TH": 420, "VN": 420, "KH": 420,
    "LA": 420, "ID": 420, "JP": 540, "KR": 540, "AU": 600, "NZ": 720, "FJ": 720, "PG": 600,
    "MN": 480, "GU": 600,
    "KE": 180, "ET": 180, "TZ": 180, "UG": 180, "SO": 180, "MG": 180, "ZA": 120, "ZW": 120,
    "ZM": 120, "MW": 120, "MZ": 120, "BW": 120, "NA": 60, "RW": 120, "BI": 120, "GH": 0,
    "SN": 0, "CI": 0, "ML": 0, "BF": 0, "GM": 0, "GN": 0, "SL": 0, "LR": 0, "TG": 0,
    "EG": 120, "LY": 120, "SD": 180, "TN": 60, "DZ": 60, "MA": 60, "IR": 270, "AE": 240,
    "OM": 240, "IL": 180, "PS": 180, "LB": 180, "SY": 180, "JO": 180,
}

# Capital (or main library city) of the countries that held national or
# self-facilitated workshops.
CITIES = {
    "AR": "Buenos Aires", "AT": "Wien", "AU": "Canberra", "BD": "Dhaka", "BE": "Bruxelles",
    "BO": "La Paz", "BR": "Brasília", "BW": "Gaborone", "CA": "Ottawa", "CH": "Bern",
    "CI": "Abidjan", "CL": "Santiago", "CM": "Yaoundé", "CN": "Beijing", "CO": "Bogotá",
    "CR": "San José", "CU": "La Habana", "CZ": "Praha", "DE": "Berlin", "DK": "København",
    "EC": "Quito", "EG": "Cairo", "ES": "Madrid", "ET": "Addis Ababa", "FI": "Helsinki",
    "FJ": "Suva", "FR": "Paris", "GB": "London", "GH": "Accra", "GR": "Athens",
    "HK": "Hong Kong", "HR": "Zagreb", "HU": "Budapest", "ID": "Jakarta", "IE": "Dublin",
    "IL": "Jerusalem", "IN": "New Delhi", "IR": "Tehran", "IT": "Roma", "JM": "Kingston",
    "JO": "Amman", "JP": "Tokyo", "KE": "Nairobi", "KR": "Seoul", "KZ": "Astana",
    "LB": "Beirut", "LK": "Colombo", "MA": "Rabat", "MW": "Lilongwe", "MX": "Ciudad de México",
    "MY": "Kuala Lumpur", "NG": "Abuja", "NL": "Den Haag", "NO": "Oslo", "NP": "Kathmandu",
    "NZ": "Wellington", "OM": "Muscat", "PE": "Lima", "PH": "Manila", "PK": "Islamabad",
    "PL": "Warszawa", "PT": "Lisboa", "QA": "Doha", "RU": "Moskva", "RW": "Kigali",
    "SA": "Riyadh", "SE": "Stockholm", "SG": "Singapore", "SN": "Dakar", "TH": "Bangkok",
    "TN": "Tunis", "TT": "Port of Spain", "TW": "Taipei", "TZ": "Dodoma", "UA": "Kyiv",
    "UG": "Kampala", "US": "Washington", "UY": "Montevideo", "VN": "Hà Nội", "ZA": "Pretoria",
    "ZM": "Lusaka", "ZW": "Harare",
}

REGION_LABELS = {
    "africa": "Africa", "asia_oceania": "Asia and Oceania", "europe": "Europe",
    "latin_america_caribbean": "Latin America and the Caribbean",
    "middle_east_north_africa": "Middle East and North Africa", "north_america": "North America",
}

# The fixed workshops of the consultation: (kind, country, city, language, first day,
# days, region label or None, participants at scale 1).
FIXED_WORKSHOPS = (
    ("kickoff", "GR", "Athens", "en", "2017-04-04", 2, None, 104),
    ("regional", "US", "Washington, DC", "en", "2017-05-03", 2, "north_america", 78),
    ("regional", "CM", "Yaoundé", "fr", "2017-05-14", 2, "africa", 86),
    ("regional", "EG", "Alexandria", "ar", "2017-05-21", 2, "middle_east_north_africa", 72),
    ("regional", "AR", "Buenos Aires", "es", "2017-06-08", 2, "latin_america_caribbean", 81),
    ("regional", "SG", "Singapore", "en", "2017-06-28", 2, "asia_oceania", 93),
    ("regional", "ES", "Madrid", "es", "2017-07-05", 2, "europe", 89),
)

IFLA_UNITS = (
    "Academic and Research Libraries", "Public Libraries", "School Libraries",
    "National Libraries", "Library Services to People with Special Needs",
    "Information Literacy", "Cataloguing", "Preservation and Conservation",
    "Library Theory and Research", "Education and Training",
    "Continuing Professional Development and Workplace Learning", "Rare Books and Special Collections",
    "Government Libraries", "Health and Biosciences Libraries", "Law Libraries",
    "Art Libraries", "Metropolitan Libraries", "Libraries for Children and Young Adults",
    "Management and Marketing", "Statistics and Evaluation", "Information Technology",
    "Knowledge Management", "Reference and Information Services", "Indigenous Matters",
    "Library Buildings and Equipment", "Serials and Other Continuing Resources",
    "Acquisition and Collection Development", "Document Delivery and Resource Sharing",
    "Library History", "Literacy and Reading", "New Professionals SIG", "Women, Information and Libraries SIG",
    "Committee on Copyright and other Legal Matters",
    "Freedom of Access to Information and Freedom of Expression (FAIFE)",
    "Management of Library Associations", "Audiovisual and Multimedia", "Newspapers",
    "Social Science Libraries", "Science and Technology Libraries", "Mobile Libraries SIG",
)

FIRST_NAMES = (
    "anna", "maria", "john", "li", "wei", "fatima", "ahmed", "olga", "ivan", "pierre",
    "sophie", "hans", "julia", "carlos", "lucia", "kwame", "amina", "yuki", "hiroshi",
    "priya", "raj", "chen", "sara", "david", "elena", "jose", "ana", "mohamed", "noura",
    "peter", "grace", "joseph", "ngozi", "tanya", "lars", "ingrid", "mateo", "sofia",
    "kofi", "lin", "mei", "omar", "leila", "nina", "tomas", "eva", "paulo", "rosa",
)

COMMENTS = (
    "Great initiative, thank you!",
    "Libraries matter, now more than ever.",
    "Hard to choose only five, all options are important",
    "We need more funding, more staff, and more recognition",
    "Our library: small, rural, underfunded; still we serve everyone.",
    'The "digital shift" should not leave anyone behind',
    "Thanks to IFLA.\nLooking forward to the results.",
    "Line one of my remark,\r\nline two, with a comma.",
    "Bibliothèques ouvertes à tous — merci !",
    "Bibliotecas: acceso, inclusión, comunidad.",
    "Спасибо за опрос",
    "感谢国际图联",
    "شكرا للاتحاد الدولي",
    "Question 4 was difficult, \"do less\" is not our culture",
    "  spaces around this comment  ",
)


@dataclass(frozen=True)
class Reference:
    """Codes and published figures the generator works from."""

    country_codes: tuple[str, ...]
    country_names: dict[str, str]
    country_region: dict[str, str]
    un_members: frozenset[str]
    options: dict[str, tuple[str, ...]]  # question -> its ten option codes, in order
    figures: dict

    @property
    def pool(self) -> tuple[str, ...]:
        """Countries whose people take part (sorted)."""
        chosen = [c for c in self.country_codes
                  if (c in self.un_members and c not in ABSENT_UN_MEMBERS) or c in PARTICIPATING_AREAS]
        return tuple(chosen)


def load_reference(dbt_project_dir: Path = DBT_PROJECT_DIR,
                   figures_path: Path | None = None) -> Reference:
    figures_path = figures_path or PROJECT_ROOT / "orchestration" / "reference" / "reference_figures.json"
    seeds = dbt_project_dir / "seeds"
    with open(seeds / "countries.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    codes = tuple(sorted(r["country_code"] for r in rows))
    names = {r["country_code"]: r["country_name"] for r in rows}
    region = {r["country_code"]: r["region_code"] for r in rows}
    un = frozenset(r["country_code"] for r in rows if r["is_un_member"].strip().lower() == "true")
    with open(seeds / "options.csv", newline="", encoding="utf-8") as f:
        opts = list(csv.DictReader(f))
    options = {q: tuple(sorted(o["option_code"] for o in opts if o["question_code"] == q))
               for q in QUESTIONS}
    for q, codes_q in options.items():
        if len(codes_q) != 10:
            raise ValueError(f"expected ten options for {q}, found {len(codes_q)}")
    figures = json.loads(figures_path.read_text(encoding="utf-8"))
    return Reference(codes, names, region, un, options, figures)
