"""Phone numbers, email addresses and addresses are links a phone acts on, and stay escaped."""

from __future__ import annotations

import pytest

from custodia.web.templatetags.contact import email_link, map_link, phone_link


@pytest.mark.parametrize(
    ("written", "dialled"),
    [
        ("+1 (555) 010-2030", "+15550102030"),
        ("555.010.2030", "5550102030"),
        ("+44 20 7946 0958", "+442079460958"),
        ("01+23 45", "012345"),
    ],
)
def test_a_phone_number_is_dialled_without_its_punctuation(written, dialled):
    assert phone_link(written) == f'<a href="tel:{dialled}">{written}</a>'


@pytest.mark.parametrize("value", ["", None, "ask", "12"])
def test_what_is_not_a_number_stays_text(value):
    assert phone_link(value) == (value or "—")


def test_an_email_address_is_a_mailto_link_and_markup_in_it_is_escaped():
    assert email_link("ann.lee@example.com") == (
        '<a href="mailto:ann.lee@example.com">ann.lee@example.com</a>'
    )
    hostile = 'x"><script>@example.com'
    link = email_link(hostile)
    assert "<script>" not in link and "&lt;script&gt;" in link and '"><' not in link
    assert email_link("no at sign") == "no at sign"


def test_an_address_keeps_its_lines_and_links_to_a_map_search():
    link = map_link("12 Oak Lane\nSpringfield <b>")
    assert link.startswith("12 Oak Lane<br>Springfield &lt;b&gt;<br><a href=")
    assert (
        "https://www.openstreetmap.org/search?query=12%20Oak%20Lane%20Springfield%20%3Cb%3E" in link
    )
    assert 'rel="noreferrer noopener"' in link
    assert map_link("  ") == "—"
