"""Reference landing-zone generator: demo data, test fixtures and benchmark load.

The independent oracle of the pipeline: it writes a landing zone whose every record has
a planned outcome, and the answer key (``expected.json``) derived from that plan. It
shares no code with ingestion or validation.
"""

from orchestration.generate.core import generate_landing_zone

__all__ = ["generate_landing_zone"]
