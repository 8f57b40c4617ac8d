"""Card test helpers: a card added through the app's pages and the live vault's hosted form."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from custodia.core.actor import Actor
from custodia.payments.models import PaymentMethod
from custodia.tenancy.actions import do_grant_cards
from tests.acting import act
from tests.factories import Business
from tests.vaults import LiveVault

VISA = "4242424242424242"
DECLINED = "4000000000000002"
TIMES_OUT = "4000000000000119"
LATE_SUCCESS = "4000000000000317"
SECURITY_CODE = "731"


def card_number_pattern(number: str) -> re.Pattern[str]:
    """The card number's digits in order, run together or grouped by single spaces or dashes
    (any grouping: "4242 4242 ...", "3782-822463-10005")."""
    return re.compile("[ -]?".join(re.escape(digit) for digit in number))


def security_code_alone(code: str) -> re.Pattern[str]:
    """The security code as a value of its own: not inside an id, a digest, a decimal or a
    timestamp, where the same digits may occur by chance."""
    return re.compile(rf"(?<![0-9A-Za-z.:+_-]){re.escape(code)}(?![0-9A-Za-z.:_-])")


def grant_cards(business: Business) -> Actor:
    """The business's manager, granted card payments by its owner."""
    act(business.owner)
    do_grant_cards(business.manager.membership, True, actor=business.owner)
    return business.manager


def open_form(web: Any, add_path: str) -> tuple[Any, str]:
    """POST the add-a-card page: the response and the vault form's URL in its iframe."""
    response = web.post(add_path)
    assert response.status_code == 200, response.status_code
    match = re.search(r'<iframe class="card-frame" src="([^"]+)"', response.content.decode())
    assert match is not None
    return response, html.unescape(match.group(1))


def add_card_through_app(
    web: Any, vault: LiveVault, add_path: str, number: str = VISA, **fields: str
) -> Any:
    """The whole flow: the app's page, the vault's form, back to the app; the last response."""
    _page, form_url = open_form(web, add_path)
    fields.setdefault("security_code", SECURITY_CODE)
    answer = vault.submit_card(form_url, number=number, **fields)
    assert answer.status == 303, answer.data
    location = answer.headers["Location"]
    assert location.startswith(settings.PUBLIC_URL + "/app/cards/added/")
    back = urlsplit(location)
    return web.get(f"{back.path}?{back.query}")


def saved_card(business: Business, **fields: Any) -> PaymentMethod:
    """A card row made directly (no vault), for tests of who may reach what."""
    act(business.owner)
    defaults: dict[str, Any] = {
        "vault_token": f"tok_{business.client.pk.hex[:20]}",
        "brand": "Visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2040,
        "fingerprint": business.client.pk.hex,
    }
    defaults.update(fields)
    return PaymentMethod.objects.create(
        tenant_id=business.owner.tenant_id, client=business.client, **defaults
    )
