"""Why an access function is asked for a record: the one thing that decides whether the read is
recorded in the audit trail.

Access functions that hand out customer data (a client's record, visits, a page of a list or
search) record the read themselves (docs/audit.md, "Reads record themselves"); the caller says
why it wants the record, never whether to record it.
"""

from __future__ import annotations

from enum import StrEnum


class Intent(StrEnum):
    """What the caller will do with the record it asks for."""

    # It is shown: a page, an API answer, a form filled with its fields. The read is recorded.
    SHOW = "show"
    # An action is about to change or delete it, and records what it did: no read event. A page
    # that then shows the record anyway (a form sent back with errors) asks again with SHOW.
    CHANGE = "change"
    # Only its identity is used: another record's write names it (a visit's client), or a
    # redirect depends on it existing. None of its fields leaves the server: no read event.
    REFERENCE = "reference"
