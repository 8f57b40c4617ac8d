"""What a vault request can be refused with: an HTTP status and a message fit to show."""

from __future__ import annotations


class Refusal(Exception):
    """Refuse the request with `status` and `message` (never a card detail in it)."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFound(Refusal):
    """Unknown, or another business's: the same answer for both."""

    status = 404

    def __init__(self, what: str = "object") -> None:
        super().__init__(f"No such {what}.")


class Gone(Refusal):
    status = 410


class Conflict(Refusal):
    status = 409
