"""Make the GX Data Docs site work without a network.

GX's page templates load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs
and the logo from S3. The package ships none of those libraries (only its own CSS, fonts and
images, which the site builder copies into ``static/``), so after every build:

* every ``<script src=http(s)://…>`` and ``<link href=http(s)://…>`` is removed, and one local
  ``static/gvw/gvw_offline.js`` (self-written stand-in, see ``expectations/plugins``) is
  linked in their place; the matching CSS is inlined by GX itself from the context's
  ``plugins/custom_data_docs/styles/data_docs_custom_styles.css``;
* remote ``<img src>`` (the GX logo) point at the copy GX ships in ``static/images``;
* remote ``url(…)`` in inline styles and the copied CSS become ``none``.

Files are rewritten atomically and only when they still reference a remote resource.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from orchestration.quality.atomic import write_text_atomic
from orchestration.settings import EXPECTATIONS_DIR

OFFLINE_JS_SOURCE = EXPECTATIONS_DIR / "plugins" / "custom_data_docs" / "offline" / "gvw_offline.js"
OFFLINE_JS_TARGET = Path("static") / "gvw" / "gvw_offline.js"
LOGO = Path("static") / "images" / "logo-long.png"

_REMOTE = r"""["']\s*(?:https?:)?//[^"']*["']"""
_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*" + _REMOTE + r"[^>]*>\s*</script>", re.IGNORECASE)
_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*" + _REMOTE + r"[^>]*>", re.IGNORECASE)
_REMOTE_IMG_SRC = re.compile(r"""(<img\b[^>]*?\bsrc\s*=\s*)(["'])\s*(?:https?:)?//[^"']*\2""", re.IGNORECASE)
_REMOTE_CSS_URL = re.compile(r"""url\(\s*["']?\s*(?:https?:)?//[^)]*\)""", re.IGNORECASE)
_MARKER = "<!-- gvw: offline -->"

# What a test (and an auditor) can grep for: any tag that would load something remote.
REMOTE_RESOURCE = re.compile(
    r"""<(?:script|link|img|iframe|source|embed)\b[^>]*\b(?:src|href)\s*=\s*["']\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)


def _relative_root(site_dir: Path, page: Path) -> str:
    rel = os.path.relpath(site_dir, page.parent)
    return "." if rel == "." else rel.replace(os.sep, "/")


def make_page_offline(html: str, root: str) -> str:
    """``html`` with its remote scripts, stylesheets, images and CSS urls replaced or removed."""
    local_script = f'{_MARKER}<script src="{root}/{OFFLINE_JS_TARGET.as_posix()}"></script>'
    inserted = False

    def first_script(match: re.Match[str]) -> str:
        nonlocal inserted
        if inserted:
            return ""
        inserted = True
        return local_script

    html = _REMOTE_SCRIPT.sub(first_script, html)
    html = _REMOTE_LINK.sub("", html)
    html = _REMOTE_IMG_SRC.sub(lambda m: f"{m.group(1)}{m.group(2)}{root}/{LOGO.as_posix()}{m.group(2)}", html)
    html = _REMOTE_CSS_URL.sub("none", html)
    if not inserted and _MARKER not in html and "</head>" in html:
        html = html.replace("</head>", local_script + "</head>", 1)
    return html


def make_site_offline(site_dir: Path, modified_since: float | None = None) -> int:
    """Rewrite every page and stylesheet of the site that still references a remote
    resource; return how many files changed. ``modified_since`` (a timestamp): look only at
    files written since then, i.e. by the build that just ran (older ones were rewritten
    after their own build)."""
    if not site_dir.is_dir():
        return 0
    target_js = site_dir / OFFLINE_JS_TARGET
    source = OFFLINE_JS_SOURCE.read_bytes()
    if not target_js.exists() or target_js.read_bytes() != source:
        target_js.parent.mkdir(parents=True, exist_ok=True)
        tmp = target_js.with_name(target_js.name + ".tmp")
        tmp.write_bytes(source)
        os.replace(tmp, target_js)
    changed = 0
    for path in sorted(site_dir.rglob("*")):
        if path.suffix not in {".html", ".css"} or not path.is_file():
            continue
        if modified_since is not None and path.stat().st_mtime < modified_since:
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".css":
            new = _REMOTE_CSS_URL.sub("none", text)
        elif REMOTE_RESOURCE.search(text) or _MARKER not in text:
            new = make_page_offline(text, _relative_root(site_dir, path))
        else:
            continue
        if new != text:
            write_text_atomic(path, new)
            changed += 1
    return changed

