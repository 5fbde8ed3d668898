"""Errors the use cases raise; the web layer maps each to an HTTP status and a Chinese message."""


class DomainError(Exception):
    """Base of every error a user can be shown. `message` is Chinese and safe to display."""

    status = 400
    # A refused request normally leaves nothing behind; an error that records why it refused (a counted
    # failed sign-in) keeps what the request wrote.
    keeps_writes = False

    def __init__(self, message: str, *, field_errors: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}
        # What to record once the request's writes are rolled back (e.g. the case is marked in error):
        # `aftermath(session)`, run by the caller in a transaction of its own.
        self.aftermath = None


class ValidationFailed(DomainError):
    """Submitted data breaks a rule; `field_errors` names each field. Nothing was written."""

    status = 422


class RegistryError(ValidationFailed):
    """An elder record (or roster row) is invalid."""


class PermissionDenied(DomainError):
    """The actor's role or area does not allow this."""

    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    """Someone else changed the same thing first (task already completed, case moved on)."""

    status = 409


class LoginRefused(DomainError):
    """Wrong username or password, or an account locked after repeated failures (the failure is counted)."""

    status = 401
    keeps_writes = True
