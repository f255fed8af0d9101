"""Data quality for auditors: Great Expectations suites, offline Data Docs and the audit report.

* :mod:`.frames` - the pandas frames the suites validate, computed in DuckDB (read-only);
* :mod:`.runner` - runs the versioned GX checkpoints of ``expectations/`` on those frames,
  storing results under ``$GVW_DATA_DIR/quality`` (never in the repository), and renders
  the Data Docs there once per run (``build_data_docs``);
* :mod:`.offline` - makes the Data Docs site work without a network;
* :mod:`.audit` - ``audit_report.json`` / ``audit_report.html``: every delivered record
  accounted for, the rules the data broke, the published figures recomputed from raw;
* :mod:`.scrub` - nothing e-mail-shaped reaches any of those files.

The Dagster side (asset checks, the ``quality/audit_report`` asset) is
``orchestration/assets/quality.py``. Importing this package does not import GX.
"""

from orchestration.quality.audit import build_audit, write_audit_report
from orchestration.quality.frames import FRAMES, FrameSpec, build_frame
from orchestration.quality.runner import ValidationOutcome, build_data_docs, read_only, validate_frame, validate_frames

__all__ = [
    "FRAMES",
    "FrameSpec",
    "ValidationOutcome",
    "build_audit",
    "build_data_docs",
    "build_frame",
    "read_only",
    "validate_frame",
    "validate_frames",
    "write_audit_report",
]
