"""Contact details as links a phone acts on: call, write, find on a map."""

from __future__ import annotations

import re
from urllib.parse import quote

from django import template
from django.template.defaultfilters import linebreaksbr
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

# What a dialler takes: a leading plus, then digits (spaces, dots, dashes and brackets dropped).
_NOT_DIALLED = re.compile(r"[^\d+]|(?<!^)\+")
# Where "Map" goes: OpenStreetMap's search, opened only when the link is followed (docs/visits.md).
MAP_SEARCH = "https://www.openstreetmap.org/search?query="
NONE = "—"


@register.filter
def phone_link(number: str) -> SafeString | str:
    """A `tel:` link for a phone number, the number shown as it was written."""
    dialled = _NOT_DIALLED.sub("", number or "")
    if len(dialled.lstrip("+")) < 3:
        return number or NONE
    return format_html('<a href="tel:{}">{}</a>', dialled, number)


@register.filter
def email_link(address: str) -> SafeString | str:
    """A `mailto:` link for an email address."""
    if not address or "@" not in address:
        return address or NONE
    return format_html('<a href="mailto:{}">{}</a>', quote(address, safe="@.+-_"), address)


@register.filter
def map_link(address: str) -> SafeString | str:
    """The address on its lines, and a link that finds it on a map."""
    if not (address or "").strip():
        return NONE
    place = " ".join(address.split())
    return format_html(
        '{}<br><a href="{}{}" rel="noreferrer noopener" target="_blank">Map'
        '<span class="visually-hidden"> of {} (opens openstreetmap.org)</span></a>',
        linebreaksbr(address, autoescape=True),
        MAP_SEARCH,
        quote(place, safe=""),
        place,
    )
