"""BI exports: atomic, versioned, documented Parquet datasets of the marts.

``publish_exports`` writes one consistent version of every dataset (see ``publish`` for the
order of operations and ``layout`` for the folder structure); ``python -m orchestration.export``
runs it outside Dagster.
"""

from orchestration.export.datasets import DATASETS, DatasetSpec, Suppression, dataset_by_name
from orchestration.export.docs import DbtDocs, DbtDocsError, ModelDoc
from orchestration.export.publish import (
    ExportError,
    ExportOptions,
    PrivacyError,
    PublishResult,
    publish_exports,
    read_manifest,
    recover,
)

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "DbtDocs",
    "DbtDocsError",
    "ExportError",
    "ExportOptions",
    "ModelDoc",
    "PrivacyError",
    "PublishResult",
    "Suppression",
    "dataset_by_name",
    "publish_exports",
    "read_manifest",
    "recover",
]
