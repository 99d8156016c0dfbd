"""The one domain exception. Services raise it; the API and pages turn it into a 400 with the field named."""

from __future__ import annotations


class ApplicationError(Exception):
    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.code = code


class NotFound(Exception):
    """The object does not exist or is not the caller's (both are 404)."""


class Conflict(Exception):
    """The action is not allowed in the current state, or a concurrent action won (409)."""

    def __init__(self, message: str, *, state: str | None = None):
        super().__init__(message)
        self.message = message
        self.state = state
