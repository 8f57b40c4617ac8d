"""Apple's PassKit web service, the domain side (the HTTP doors: web/wallet/service.py).

A device's requests carry no session. A request about one pass presents
`Authorization: ApplePass <token>`: its SHA-256 digest is the lookup context
(`set_db_context(lookup='wallet-token:<digest>')`), under which row-level security shows only
the wallet pass with that digest (wallet/migrations/0002_rls.py); its serial must match too and
the digests are compared again in constant time. The request then acts as that pass's client,
in that one business (`pass_holder_actor`), and nothing else. A device's list of its updated
passes carries no token (Apple's protocol): it is found by the device library identifier
('wallet-device:<id>'), which shows that device's registrations' serials and tags alone.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from custodia.core.dbcontext import set_db_context
from custodia.tenancy.actors import PassHolderActor, pass_holder_actor
from custodia.wallet.actions import DEVICE_ID
from custodia.wallet.config import pass_type_id
from custodia.wallet.models import SERIAL_LENGTH, WalletPass, WalletRegistration
from custodia.wallet.tokens import token_digest

SCHEME = "ApplePass"
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class Holder:
    """An authenticated request about one pass: who acts, the wallet pass, the token shown."""

    actor: PassHolderActor
    wallet_pass: WalletPass
    token: str


def presented_token(authorization: str | None) -> str | None:
    """The token of an `ApplePass <token>` header, or None if absent or malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme != SCHEME or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


def authenticate(type_id: str, serial: str, authorization: str | None) -> Holder | None:
    """The holder of pass `serial` of type `type_id` if the header's token is its token; None
    otherwise (unknown type or serial, missing, malformed or another pass's token). Inside the
    request's transaction; sets the lookup context, the caller then acts as `holder.actor`."""
    token = presented_token(authorization)
    configured = pass_type_id()
    if token is None or not configured or not hmac.compare_digest(type_id, configured):
        return None
    if len(serial) > SERIAL_LENGTH:
        return None
    digest = token_digest(token)
    set_db_context(lookup=f"wallet-token:{digest}")
    found = WalletPass.objects.filter(serial_number=serial, auth_digest=digest).first()
    if found is None or not hmac.compare_digest(found.auth_digest, digest):
        return None
    return Holder(pass_holder_actor(found.tenant_id, found.client_id), found, token)


@dataclass(frozen=True)
class UpdatedSerials:
    serial_numbers: list[str]
    last_updated: str


def tag_of(moment: dt.datetime) -> str:
    """An update tag: microseconds since the epoch, as text (opaque to devices)."""
    return str(int(moment.timestamp() * 1_000_000))


def parse_tag(tag: str | None) -> dt.datetime | None:
    """A tag given back by a device, or None (absent or not one of ours: everything)."""
    if not tag or not tag.isdigit() or len(tag) > 20:
        return None
    return dt.datetime.fromtimestamp(int(tag) / 1_000_000, tz=dt.UTC)


def updated_serials(
    device_library_id: str, type_id: str, since: str | None
) -> UpdatedSerials | None:
    """The serials of this device's passes changed after `since`, and the newest tag; None when
    the device has no registration (or nothing changed)."""
    configured = pass_type_id()
    if not configured or not hmac.compare_digest(type_id, configured):
        return None
    if not DEVICE_ID.fullmatch(device_library_id):
        return None
    set_db_context(lookup=f"wallet-device:{device_library_id}")
    registered = WalletRegistration.objects.filter(device_library_id=device_library_id).values_list(
        "wallet_pass_id", flat=True
    )
    # Only the wallet's own table: the device's context shows no payments row (expiry moves
    # the tags through the wallet's hourly task, wallet/tasks.py).
    tagged = list(
        WalletPass.objects.filter(id__in=list(registered)).values_list(
            "serial_number", "updated_at"
        )
    )
    if not tagged:
        return None
    after = parse_tag(since)
    changed = [(serial, tag) for serial, tag in tagged if after is None or tag > after]
    if not changed:
        return None
    newest = max(tag for _, tag in tagged)
    return UpdatedSerials(sorted(serial for serial, _ in changed), tag_of(newest))
