"""E-mail scrubbing: nothing that looks like an e-mail address reaches a report.

Ingestion already masks e-mail values (``<email:HASHPREFIX>``) and no mart holds one; this
is the defensive second line for everything written under ``$GVW_DATA_DIR/quality``:
validation results (GX keeps samples of unexpected values), Data Docs and the audit report.
"""

from __future__ import annotations

import re
from typing import Any

# Deliberately loose: anything shaped like local@domain.tld is treated as an address.
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
EMAIL_RE = re.compile(EMAIL_PATTERN)
# Column names that could hold an address (e-mail, email, e_mail, courriel, correo, ...).
EMAIL_COLUMN_NAME_PATTERN = r"(?i)(?:e[-_. ]?mail|courriel|correo|mail_?addr)"

# Plain text (no angle brackets): GX renders unexpected values into its pages unescaped.
MASK = "[redacted e-mail]"


def mask_text(text: str) -> str:
    """``text`` with every e-mail-looking substring replaced by a fixed mask."""
    return EMAIL_RE.sub(MASK, text)


def scrub(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, tuples, strings) with e-mails masked.

    Dictionary keys are masked too: GX keys some counts by the unexpected value.
    """
    if isinstance(value, str):
        return mask_text(value) if "@" in value else value
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub(v) for v in value)
    return value


def contains_email(text: str) -> bool:
    return EMAIL_RE.search(text) is not None
