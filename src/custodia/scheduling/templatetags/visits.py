"""`{% visit_table_rows visits show_client show_staff %}`: a visit table's rows, made in Python
(scheduling/rows.py says why)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from custodia.scheduling.rows import VisitLine, table_rows

register = template.Library()


@register.simple_tag
def visit_table_rows(
    visits: list[VisitLine], show_client: object = False, show_staff: object = False
) -> SafeString:
    """The `<tr>` of each visit line."""
    return table_rows(visits, show_client=bool(show_client), show_staff=bool(show_staff))
