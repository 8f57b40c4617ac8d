"""Dates outside the range a visit can have, and bodies past the size limit, are refused with a
clear 4xx (422 naming the field, 413) instead of a 500, and nothing is written."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.conf import settings
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from custodia.scheduling.actions import EARLIEST_VISIT, LATEST_VISIT
from tests.api.conftest import assert_error, names, send, snapshot
from tests.factories import TenantMatrix
from tests.web.support import logged_in

FAR = [
    "9999-12-31T23:59:00Z",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z",
]


@pytest.mark.parametrize("moment", FAR)
def test_a_manager_cannot_schedule_a_visit_out_of_range(
    matrix: TenantMatrix, api_as: Any, moment: str
) -> None:
    values = names(matrix)
    client = api_as(matrix.a.owner)
    before = snapshot(matrix)
    with_service = {
        "client_id": values["client"],
        "starts_at": moment,
        "service_id": values["service"],
    }
    errors = assert_error(send(client, "POST", "/visits", with_service), 422)["errors"]
    assert "starts_at" in errors
    with_end = {"client_id": values["client"], "starts_at": moment, "ends_at": moment}
    errors = assert_error(send(client, "POST", "/visits", with_end), 422)["errors"]
    assert "starts_at" in errors
    assert snapshot(matrix) == before


@pytest.mark.parametrize("moment", FAR)
def test_a_visit_cannot_be_moved_out_of_range(
    matrix: TenantMatrix, api_as: Any, moment: str
) -> None:
    values = names(matrix)
    client = api_as(matrix.a.owner)
    before = snapshot(matrix)
    path = f"/visits/{values['visit']}"
    for field in ("starts_at", "ends_at"):
        errors = assert_error(send(client, "PATCH", path, {field: moment}), 422)["errors"]
        assert field in errors, errors
    assert snapshot(matrix) == before


@pytest.mark.parametrize("moment", FAR)
def test_a_client_cannot_request_a_visit_out_of_range(
    matrix: TenantMatrix, web_as: Any, moment: str
) -> None:
    values = names(matrix)
    before = snapshot(matrix)
    body = {"starts_at": moment, "service_id": values["service"]}
    errors = assert_error(send(web_as(matrix.a.client_login), "POST", "/visits", body), 422)
    assert "starts_at" in errors["errors"]
    assert snapshot(matrix) == before


def test_the_range_ends_are_stated_and_the_edges_accepted(
    matrix: TenantMatrix, api_as: Any
) -> None:
    values = names(matrix)
    client = api_as(matrix.a.owner)
    message = send(
        client,
        "POST",
        "/visits",
        {
            "client_id": values["client"],
            "starts_at": "9999-12-31T23:59:00Z",
            "service_id": values["service"],
        },
    ).json()["errors"]["starts_at"][0]
    assert "2000" in message and "2099" in message
    first = EARLIEST_VISIT.isoformat()
    last_start = (LATEST_VISIT - dt.timedelta(hours=1)).isoformat()
    last_end = (LATEST_VISIT - dt.timedelta(minutes=1)).isoformat()
    for starts, ends in (
        (first, (EARLIEST_VISIT + dt.timedelta(hours=1)).isoformat()),
        (last_start, last_end),
    ):
        body = {"client_id": values["client"], "starts_at": starts, "ends_at": ends}
        assert send(client, "POST", "/visits", body).status_code == 201


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/app/visits/new/", {"client": "{client}", "service": "{service}"}),
        ("/app/portal/request/", {"service": "{service}"}),
    ],
)
@pytest.mark.parametrize("moment", ["9999-12-31T23:59", "0001-01-01T00:00", "1999-12-31T23:59"])
def test_the_web_forms_refuse_a_start_out_of_range(
    matrix: TenantMatrix, path: str, fields: dict[str, str], moment: str
) -> None:
    values = names(matrix)
    who = matrix.a.client_login if "portal" in path else matrix.a.manager
    browser = logged_in(who)
    before = snapshot(matrix)
    data = {key: values[value.strip("{}")] for key, value in fields.items()}
    answer = browser.post(path, {**data, "starts_at": moment})
    assert answer.status_code == 400
    assert "2099" in answer.content.decode()
    assert snapshot(matrix) == before


AWARE = st.datetimes(
    min_value=dt.datetime(1, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12))]
    ),
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    starts=AWARE, minutes=st.integers(min_value=-2000, max_value=2000), with_service=st.booleans()
)
@example(starts=dt.datetime(9999, 12, 30, 23, 59, tzinfo=dt.UTC), minutes=0, with_service=True)
@example(starts=dt.datetime(1, 1, 2, tzinfo=dt.UTC), minutes=-60, with_service=False)
def test_any_visit_time_is_a_201_or_a_422_never_a_500(
    matrix: TenantMatrix, api_as: Any, starts: dt.datetime, minutes: int, with_service: bool
) -> None:
    """Whatever instant is sent, with a service or an explicit end, the answer is a 201 inside
    the range or a 422 on the field outside it."""
    values = names(matrix)
    body: dict[str, Any] = {"client_id": values["client"], "starts_at": starts.isoformat()}
    if with_service:
        body["service_id"] = values["service"]
    else:
        try:
            body["ends_at"] = (starts + dt.timedelta(minutes=minutes)).isoformat()
        except OverflowError:
            body["ends_at"] = starts.isoformat()
    response = send(api_as(matrix.a.owner), "POST", "/visits", body)
    assert response.status_code in (201, 422), response.content
    if response.status_code == 422:
        assert response.json()["errors"]
    else:
        assert EARLIEST_VISIT <= starts < LATEST_VISIT


# --- Request size ---------------------------------------------------------------------------


def _oversized() -> str:
    return json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})


@pytest.mark.parametrize("auth", ["token", "session"])
def test_an_oversized_json_body_is_a_413(
    matrix: TenantMatrix, api_as: Any, web_as: Any, auth: str
) -> None:
    client = api_as(matrix.a.owner) if auth == "token" else web_as(matrix.a.owner)
    before = snapshot(matrix)
    response = send(client, "POST", "/clients", _oversized())
    body = assert_error(response, 413)
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in body["detail"].replace(",", "")
    assert "xxxx" not in response.content.decode()
    assert snapshot(matrix) == before


def test_an_oversized_web_form_is_a_413(matrix: TenantMatrix) -> None:
    browser = logged_in(matrix.a.manager)
    before = snapshot(matrix)
    answer = browser.post(
        "/app/services/new/",
        {
            "name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
            "duration_minutes": "30",
            "price": "1",
        },
    )
    assert answer.status_code == 413
    assert "too large" in answer.content.decode().lower()
    assert snapshot(matrix) == before


def test_the_openapi_document_names_the_413_where_a_body_is_taken(web: Any) -> None:
    document = json.loads(web.get("/api/v1/openapi.json").content)
    post = document["paths"]["/api/v1/clients"]["post"]["responses"]
    get = document["paths"]["/api/v1/clients"]["get"]["responses"]
    assert "413" in post and "413" not in get


@pytest.mark.parametrize("week", ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"])
def test_the_calendar_refuses_a_week_out_of_range(matrix: TenantMatrix, week: str) -> None:
    """Its links to the previous and next week overflowed the date type: a 500."""
    answer = logged_in(matrix.a.manager).get("/app/calendar/", {"week": week})
    assert answer.status_code == 400
    assert "2099-12-31" in answer.content.decode()


def test_the_calendar_shows_the_last_week_in_range(matrix: TenantMatrix) -> None:
    answer = logged_in(matrix.a.manager).get("/app/calendar/", {"week": "2099-12-31"})
    assert answer.status_code == 200


def test_a_visit_stored_out_of_range_can_still_change_in_other_ways(
    matrix: TenantMatrix, api_as: Any
) -> None:
    """Only the times sent are checked: a visit saved before the range existed is not stuck."""
    from custodia.scheduling.models import Visit
    from tests.acting import act

    act(matrix.a.owner)
    far = dt.datetime(9999, 12, 31, 22, tzinfo=dt.UTC)
    Visit.objects.filter(pk=matrix.a.visit.pk).update(
        starts_at=far, ends_at=far + dt.timedelta(hours=1)
    )
    path = f"/visits/{matrix.a.visit.pk}"
    response = send(api_as(matrix.a.owner), "PATCH", path, {"status": "cancelled"})
    assert response.status_code == 200, response.content
