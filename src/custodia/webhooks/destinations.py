"""Where a webhook may go: an https URL whose host resolves to public addresses only.

Checked when an endpoint is saved (a clear message on the form) and again at every delivery
(`resolve_public`), where the address checked is the one connected to (delivery.py pins the
connection to it), so a name that resolves to a public address at save and to 127.0.0.1 later
(DNS rebinding) is refused then. `settings.WEBHOOKS_ALLOW_PRIVATE` lifts the address check for
development and tests only (settings.py refuses it in production).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from custodia.webhooks.models import URL_LENGTH

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Refused(Exception):
    """The destination may not be connected to; the message is safe to show and store."""


@dataclass(frozen=True)
class Destination:
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def parse_url(url: str) -> Destination:
    """The destination of an endpoint URL, or a ValidationError on `url` saying what is wrong."""
    url = url.strip()
    if not url:
        raise ValidationError({"url": "Enter the URL that receives the events."})
    if len(url) > URL_LENGTH:
        raise ValidationError({"url": f"At most {URL_LENGTH} characters."})
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise ValidationError({"url": "A URL has no spaces or control characters."})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError({"url": "This is not a valid URL."}) from None
    if parts.scheme != "https":
        raise ValidationError({"url": "Webhooks are sent over https only: use an https:// URL."})
    if not parts.hostname:
        raise ValidationError({"url": "The URL needs a host name."})
    if parts.username is not None or parts.password is not None:
        raise ValidationError({"url": "Leave credentials out of the URL."})
    if parts.fragment:
        raise ValidationError({"url": "Leave the #fragment out: it is never sent."})
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Destination(parts.hostname, port or 443, path)


def is_public(address: IPAddress) -> bool:
    """Whether connecting to `address` reaches the public internet (not this host, a private
    network, a link-local or cloud metadata address, a reserved or multicast range)."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address carried inside an IPv6 one (mapped, NAT64, 6to4, Teredo) is reached
        # through it: that IPv4 address must be public too.
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if any(inner is not None and not is_public(inner) for inner in embedded):
            return False
        if address.ipv4_mapped is not None:
            return True
    return address.is_global and not address.is_multicast


def resolve_public(destination: Destination) -> list[IPAddress]:
    """The addresses to connect to, every one checked; Refused if the name does not resolve or
    any address it resolves to is not public (one bad answer is enough to refuse)."""
    try:
        answers = socket.getaddrinfo(
            destination.host, destination.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError):
        raise Refused("the host name does not resolve") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Refused("the host name does not resolve")
    if not settings.WEBHOOKS_ALLOW_PRIVATE and not all(is_public(a) for a in addresses):
        raise Refused("the destination is not a public address")
    return addresses


def check_url(url: str) -> str:
    """The URL as it will be stored, once it parses and resolves to public addresses only."""
    destination = parse_url(url)
    try:
        resolve_public(destination)
    except Refused as refused:
        if str(refused) == "the destination is not a public address":
            raise ValidationError(
                {
                    "url": "This address is on a private network or this server itself;"
                    " webhooks go to public internet addresses only."
                }
            ) from None
        raise ValidationError(
            {"url": "The host name does not resolve; check it and try again."}
        ) from None
    return url.strip()
