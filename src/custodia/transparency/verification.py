"""The record of audit-chain verifications: `custodia audit verify` and the daily checkpoint
round (which verifies each chain before signing it) each leave one row, with counts only.

Written on the operator's connection (`audit.chain.USING`): the app role may read the record,
never write it (transparency/0002), so a forged "verified" needs more than the app's password.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from custodia.audit import chain
from custodia.transparency.models import ChainVerification

USING = chain.USING


@dataclass(frozen=True)
class Verification:
    at: dt.datetime
    chains: int
    broken: int
    source: str

    @property
    def ok(self) -> bool:
        return self.broken == 0


def record_verification(*, chains: int, broken: int, source: str) -> None:
    """Keep the outcome of one verification of `chains` chains, `broken` of which failed."""
    ChainVerification.objects.using(USING).create(chains=chains, broken=broken, source=source)


def latest_verification() -> Verification | None:
    """The newest verification recorded, or None if none ran yet."""
    row = ChainVerification.objects.order_by("-at", "-id").first()
    if row is None:
        return None
    return Verification(row.at, row.chains, row.broken, row.source)
