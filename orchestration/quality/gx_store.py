"""A GX validation-results store that masks e-mail-looking values before anything is written.

Named in ``expectations/great_expectations.yml`` (``module_name`` / ``class_name``), so every
result GX persists - and every Data Docs page rendered from the store - is scrubbed, whoever
runs the checkpoint. GX keeps samples of unexpected values (``partial_unexpected_list``,
``partial_unexpected_counts``, ``observed_value``) and would otherwise write them verbatim.
"""

from __future__ import annotations

from great_expectations.data_context.store.validation_results_store import ValidationResultsStore

from orchestration.quality.scrub import scrub


class ScrubbingValidationResultsStore(ValidationResultsStore):
    def serialize(self, value):  # type: ignore[no-untyped-def]
        cleaned = scrub(value.to_json_dict())
        if self.cloud_mode:
            return cleaned
        return self._expectationSuiteValidationResultSchema.dumps(cleaned, indent=2, sort_keys=True)


__all__ = ["ScrubbingValidationResultsStore"]
