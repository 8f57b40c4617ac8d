"""Benchmark settings with field encryption switched off: the plaintext baseline.

The baseline of scenario 12 (bench/crypto.py): the same build, settings and load, with
`FIELD_ENCRYPTION = False`, so that values are stored as a format byte 0x00 and their UTF-8
(`BusinessKeys.seal`) and the email and phone searches as `kind:value` (`blind_index`). It reads
its own business, `bench-target-plain`, which `custodia bench-data --plaintext-target` writes in
that format. Never a configuration to run for real: Custodia's settings hard-code encryption on,
and only this module turns it off.
"""

from __future__ import annotations

from bench.settings import *  # noqa: F403

FIELD_ENCRYPTION = False
