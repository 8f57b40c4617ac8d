"""Tenancy's signals: what other apps hear of a business's life without tenancy importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that deletes every row of a business (an owner's deletion, or the
# purge of a closed business), before the rows go, with `business_id`. A receiver that cannot do
# its part raises: the deletion rolls back (the owner is told; the purge tries again next run).
# payments/receivers.py destroys the business's cards at the vault here.
business_deleting = Signal()
