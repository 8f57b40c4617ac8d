"""Acting in tests the way the app acts: `act(actor)` is `core.actor.acting_as` for the rest of
the test (or until the next `act`), so the database filters for the actor and actions accept it.

The scope is opened and closed around every test by the `acting_scope` fixture (tests/conftest.py),
after the test's transaction has ended.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack

from custodia.core.actor import Actor, acting_as
from custodia.tenancy.actors import actor_for_token

_scopes: list[ExitStack] = []


def act(actor: Actor, *, durable: bool = True) -> Actor:
    """Act as `actor` from here on in this test (inside a transaction, like any acting)."""
    if not _scopes:
        raise RuntimeError("act() runs inside a test (tests/conftest.py opens its scope).")
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("On another thread, act in a block: `with acting_as(actor):`.")
    return _scopes[-1].enter_context(acting_as(actor, durable=durable))


def open_scope() -> ExitStack:
    """A test's acting scope (the fixture's)."""
    scope = ExitStack()
    _scopes.append(scope)
    return scope


def close_scope(scope: ExitStack) -> None:
    """End every actor the test entered, innermost first."""
    _scopes.remove(scope)
    scope.close()


def resolve_token(presented: str, *, durable: bool = True) -> Actor | None:
    """The API's bearer-token resolution (tenancy/actors.py), acting in this test's scope."""
    if not _scopes:
        raise RuntimeError("resolve_token() runs inside a test (tests/conftest.py opens a scope).")
    return actor_for_token(presented, acting=_scopes[-1], durable=durable)
