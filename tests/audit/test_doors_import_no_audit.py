"""Reads record themselves (docs/audit.md): pages, API routers and schemas call access functions
and import nothing from `custodia.audit`, so that none can record a read itself, or forget to.
The audit app's own doors are the exception: they serve the trail through its access module."""

from __future__ import annotations

import ast
from pathlib import Path

import custodia

SRC = Path(custodia.__file__).parent
# Page modules (or packages of them), API routers, API schemas. (api/routes.py mounts every
# router, the audit app's among them: it reads nothing.)
DOORS = ("views.py", "router.py", "schemas.py")
# The audit trail's own doors (its pages and API) serve it through its access module.
AUDIT_DOORS = (SRC / "web" / "audit", SRC / "api" / "audit")


def _doors() -> list[Path]:
    found = [
        path
        for path in sorted(SRC.rglob("*.py"))
        if (path.name in DOORS or path.parent.name == "views")
        and not any(door in path.parents for door in AUDIT_DOORS)
    ]
    assert len(found) >= 10, found  # the walk finds the doors (clients, scheduling, tenancy...)
    return found


def _audit_imports(path: Path) -> list[str]:
    imported = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] if _is_audit(module) else [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        imported += [f"line {node.lineno}: {name}" for name in names if _is_audit(name)]
    return imported


def _is_audit(module: str) -> bool:
    """The audit app, or the audit writer below every app (core/audit.py)."""
    return any(
        module == name or module.startswith(f"{name}.")
        for name in ("custodia.audit", "custodia.core.audit")
    )


def test_no_page_router_or_schema_imports_the_audit_app() -> None:
    offenders = {
        str(path.relative_to(SRC)): imports
        for path in _doors()
        if (imports := _audit_imports(path))
    }
    assert offenders == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    sneaky = tmp_path / "views.py"
    sneaky.write_text(
        "def page(request):\n    from custodia.core.audit import record\n    record()\n"
    )
    assert _audit_imports(sneaky) == ["line 2: custodia.core.audit"]
    plain = tmp_path / "api.py"
    plain.write_text("from custodia import audit\nimport custodia.audit.events\n")
    assert _audit_imports(plain) == [
        "line 1: custodia.audit",
        "line 2: custodia.audit.events",
    ]


def test_no_access_function_takes_a_record_read_flag() -> None:
    """The caller says why it reads (`Intent`), never whether to record."""
    flagged = [
        str(path.relative_to(SRC))
        for path in sorted(SRC.rglob("*.py"))
        if "record_read" in path.read_text()
    ]
    assert flagged == []
