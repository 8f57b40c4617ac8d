"""What scheduling tells the apps above it, without importing them.

Both are sent inside the transaction of the action that changed the visit, after the change is
saved and recorded, with `visit` and `actor` (the one acting): a receiver that raises undoes the
whole change, so whatever it writes is written together with the visit or not at all.
"""

from __future__ import annotations

from django.dispatch import Signal

# A visit became completed (staff or a manager marked it done).
visit_completed = Signal()
# A visit became cancelled; `previous_status` says what it was (a completed one may have used a
# pass credit, which the business's rule may give back).
visit_cancelled = Signal()
