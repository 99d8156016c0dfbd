"""The one domain exception. Services raise it; the API and pages turn it into a 400 with the field named."""

from __future__ import annotations

from .text import in_language


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

    def __init__(self, message: str, *, state: str | None = None, current: dict | None = None, code: str = ""):
        super().__init__(message)
        self.message = message
        self.state = state
        self.current = current  # more of the current state for the body (e.g. a credit line's available amount)
        self.code = code  # a machine-readable reason, when there are several (e.g. why a drawdown is refused)


def error_text(exc, *, fields: bool = True) -> str:
    """One line for a page's flash message, in the reader's language: the message, then each field's errors
    (named with the field when `fields`: staff pages; the applicant's pages leave the names out)."""
    parts = [in_language(exc.message)]
    for field, msgs in (getattr(exc, "errors", None) or {}).items():
        parts += [f"{field}: {in_language(m)}" if fields else in_language(m) for m in msgs]
    return " ".join(parts)
