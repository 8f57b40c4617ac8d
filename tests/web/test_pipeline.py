"""The request pipeline is read in one place: web/middleware.py lists it, in the setting's order."""

from __future__ import annotations

import re

from django.conf import settings

from custodia.web import middleware


def test_custodia_middleware_is_all_importable_from_the_pipeline_module() -> None:
    ours = [entry for entry in settings.MIDDLEWARE if entry.startswith("custodia.")]
    assert ours, "Custodia's middleware is in the setting"
    for entry in ours:
        module, _, name = entry.rpartition(".")
        assert module == "custodia.web.middleware", entry
        assert name in middleware.__all__ and hasattr(middleware, name), entry


def test_the_pipeline_docstring_lists_it_in_the_settings_order() -> None:
    doc = middleware.__doc__ or ""
    ours = [entry.rpartition(".")[2] for entry in settings.MIDDLEWARE if "custodia." in entry]
    positions = [doc.find(name) for name in ours]
    assert -1 not in positions, [name for name, at in zip(ours, positions, strict=True) if at < 0]
    assert positions == sorted(positions)
    # And nothing in the docstring that the setting does not run.
    listed = set(re.findall(r"\b([A-Z]\w+Middleware)\b", doc))
    django_and_others = {entry.rpartition(".")[2] for entry in settings.MIDDLEWARE}
    assert listed <= django_and_others
