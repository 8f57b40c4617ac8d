"""Reads of the published pages: whether a business published its own, and the public page of
a published one (404 for anything else)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.core.validators import slug_re
from django.db import connection
from django.http import Http404

from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.transparency.models import Publication

MAX_SLUG_LENGTH = 60


@dataclass(frozen=True)
class PublishedBusiness:
    id: uuid.UUID
    name: str
    published_at: dt.datetime


def publication_of(actor: Actor) -> Publication | None:
    """The actor's business's publication (an owner's settings page), None if unpublished."""
    actor.require(Permission.BUSINESS_SECURITY_WRITE)
    return Publication.objects.filter(tenant_id=actor.tenant_id).first()


def published_business(slug: str) -> PublishedBusiness:
    """The business whose page `/b/<slug>/security/` is: published and open, else Http404."""
    # A slug is letters, digits, hyphens and underscores (tenancy.models.Business.slug): anything
    # else (a NUL byte, which the database driver refuses) is no page, never a 500.
    if not slug or len(slug) > MAX_SLUG_LENGTH or not slug_re.fullmatch(slug):
        raise Http404("No such page.")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT business_id, business_name, published_at FROM custodia_transparency_page(%s)",
            [slug],
        )
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such page.")
    return PublishedBusiness(uuid.UUID(str(row[0])), str(row[1]), row[2])
