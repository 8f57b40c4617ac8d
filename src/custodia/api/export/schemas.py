"""Input and output of the export endpoints."""

from __future__ import annotations

import datetime as dt
import uuid

from ninja import Schema


class ExportOut(Schema):
    """An export: its status (running, ready, downloaded, expired, failed), counts and page."""

    id: uuid.UUID
    status: str
    created_at: dt.datetime
    expires_at: dt.datetime
    finished_at: dt.datetime | None
    downloaded_at: dt.datetime | None
    rows: dict[str, int]
    size: int
    # The owner's page for it: the download happens there, in the starter's browser session.
    page_url: str
    # The job building it (GET /api/v1/jobs/{id}), once started through one.
    job_id: str
