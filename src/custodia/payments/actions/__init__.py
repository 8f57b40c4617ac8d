"""Writes of the payments domain (`do_<verb>_<noun>(..., *, actor)`), split by what they change:
the catalog (`catalog.py`), passes, memberships and their credits (`passes.py`), membership
renewals (`renewals.py`), invoices and payments (`invoices.py`)."""
