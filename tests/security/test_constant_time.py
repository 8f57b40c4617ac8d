"""Presented secrets (API tokens, invitation links) are checked by a comparison of digests, and by
nothing else: the comparison decides, so no faster `==` on the secret runs beside it. Invitation
links are compared in Python with `hmac.compare_digest`; API tokens by the database, which only
ever receives the secret's digests."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from custodia.accounts.access import TOKEN_PURPOSE
from custodia.accounts.actions import do_create_api_token
from custodia.accounts.digests import digest_secret
from custodia.core import dbcontext as context
from custodia.core.dbcontext import clear
from custodia.core.permissions import Role
from custodia.tenancy import actors
from custodia.tenancy.actions import do_invite_member, invitation_proof, open_invitation
from custodia.tenancy.models import Invitation
from tests.acting import act, resolve_token
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db

resolve: Callable[[str], Any] = resolve_token


class CompareSpy:
    """hmac.compare_digest, recorded; `answer` overrides its verdict to show that it decides."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.answer: bool | None = None
        self.real = hmac.compare_digest

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        verdict = self.real(a, b)
        return verdict if self.answer is None else self.answer


@pytest.fixture
def compare(monkeypatch: pytest.MonkeyPatch) -> CompareSpy:
    spy = CompareSpy()
    monkeypatch.setattr(hmac, "compare_digest", spy)
    return spy


def test_an_api_token_is_checked_by_its_digests_alone(
    matrix: TenantMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database compares the stored digest with the presented secret's digests (one per
    secret key, core/actor.py: activate_token), never with the secret, which it never sees;
    and that comparison decides."""
    owner = matrix.a.owner
    act(owner)
    token, plain = do_create_api_token(actor=owner, name="ct")
    secret = plain.split("_", 2)[2]
    forged = plain[:-4] + ("aaaa" if not plain.endswith("aaaa") else "bbbb")
    sent: list[list[Any]] = []
    real_fetch = context._fetch_with_key

    def spy(using: str, sql: str, params: list[Any]) -> Any:
        if "custodia_activate_token" in sql:
            sent.append(list(params))
        return real_fetch(using, sql, params)

    monkeypatch.setattr(context, "_fetch_with_key", spy)
    clear()
    assert resolve(plain) is not None
    [(_key, prefix, digests)] = sent
    assert prefix == token.prefix
    assert digests == [digest_secret(TOKEN_PURPOSE, secret)] == [token.digest]
    assert not any(secret in str(value) for value in sent[0])
    clear()
    assert resolve(forged) is None
    # The digests' verdict is the verdict: without the stored one among them the real secret is
    # refused; with it, a forged secret would get in (so nothing else stands beside it).
    monkeypatch.setattr(actors, "candidate_digests", lambda *_: ["0" * 64])
    clear()
    assert resolve(plain) is None
    monkeypatch.setattr(actors, "candidate_digests", lambda *_: [token.digest])
    clear()
    assert resolve(forged) is not None


def test_an_invitation_link_is_checked_by_compare_digest_alone(
    matrix: TenantMatrix, compare: CompareSpy
) -> None:
    owner = matrix.a.owner
    act(owner)
    invitation = do_invite_member(actor=owner, email="ct-invitee@example.test", role=Role.STAFF)
    found = re.search(r"/invite/([^/\s]+)/([^/\s]+)/", mail.outbox[-1].body)
    assert found is not None
    prefix, secret = found.groups()
    stored = Invitation.objects.get(pk=invitation.pk).digest
    assert open_invitation(prefix, invitation_proof(secret)).pk == invitation.pk
    assert (invitation_proof(secret), stored) in compare.calls
    wrong = invitation_proof(secret + "x")
    with pytest.raises(ValidationError):
        open_invitation(prefix, wrong)
    compare.answer = True
    assert open_invitation(prefix, wrong).pk == invitation.pk
    compare.answer = False
    with pytest.raises(ValidationError):
        open_invitation(prefix, invitation_proof(secret))
