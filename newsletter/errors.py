"""The one exception tree of the publisher.

::

    NewsletterError
    ├── ConfigError              a setting is missing or malformed (names the NEWSLETTER_* variable)
    ├── DatabaseUnavailable      the database can't be reached (or its file is locked); names it, no password
    ├── CatalogError
    │   ├── CatalogImportError   an import file can't be read (names file, JSON path or page part, and the fix)
    │   └── UnknownToolError     a comparison or review names a tool the catalog doesn't have
    ├── RenderError              a template failed to render or compile (wraps Jinja2 and mjml errors)
    ├── IssueError
    │   ├── IssueNotFound        no issue with that number
    │   ├── IssueStateError      the issue's status forbids the action (e.g. sending a cancelled issue)
    │   └── IssueTooLarge        a cohort's HTML would pass Gmail's clipping size; says what to cut
    ├── AddressError             not an email address (also a ValueError, so settings validators can raise it)
    ├── SubscriberError          a subscriber operation was refused (bad address, unknown subscriber)
    ├── WebhookError             a provider webhook was refused; nothing it carried was applied
    │   ├── WebhookRejected      authentication failed, or a signature was used before (401)
    │   └── WebhookPayloadError  the body is not the service's JSON, or a field has the wrong type (400)
    └── ProviderError            a whole batch failed at the provider
        ├── ProviderUnavailable  transient: safe to retry the batch later
        ├── ProviderAuthError    credentials refused: the issue is paused until the setting is fixed
        ├── ProviderRequestError the service refused the request as malformed: retrying cannot help
        └── ProviderAmbiguous    the request went out and no answer came: the service may have accepted it

A provider that fails part-way through a batch says what it settled first: ``settled`` holds the results of
the messages the service answered, and ``unknown`` the delivery ids it may have taken without answering; the
failure applies only to the rest of the batch.

Third-party exceptions are wrapped at the boundary where they occur; nothing else escapes the core.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from newsletter.values import SendResult


class NewsletterError(Exception):
    """Base of every error the publisher raises on purpose."""


class ConfigError(NewsletterError):
    """A setting is missing or malformed; the message names the environment variable."""


class DatabaseUnavailable(NewsletterError):
    """The database is down, unreachable or locked; what was committed stands, and running again resumes."""


class CatalogError(NewsletterError):
    """The catalog refused an operation."""


class CatalogImportError(CatalogError):
    """An import file is unreadable; the message names the file, where in it, and the fix."""


class UnknownToolError(CatalogError):
    """A comparison or review refers to a tool slug that is neither stored nor being imported."""


class RenderError(NewsletterError):
    """A template could not be rendered or compiled to HTML."""


class IssueError(NewsletterError):
    """An issue operation was refused."""


class IssueNotFound(IssueError):
    """No issue carries the requested number."""


class IssueStateError(IssueError):
    """The issue's status does not allow the requested action."""


class IssueTooLarge(IssueError):
    """A cohort's email would be clipped by Gmail; the issue is not built or sent until comparisons are cut."""


class AddressError(NewsletterError, ValueError):
    """Text that is not an email address; the message says what is wrong with it."""


class SubscriberError(NewsletterError):
    """A subscriber operation was refused (invalid address, unknown subscriber)."""


class WebhookError(NewsletterError):
    """A provider webhook was refused; nothing it carried was applied."""


class WebhookRejected(WebhookError):
    """The webhook failed authentication, or reused a signature (answered 401)."""


class WebhookPayloadError(WebhookError):
    """The webhook body is not the service's JSON or a field has the wrong type (answered 400)."""


class ProviderError(NewsletterError):
    """A whole batch failed at the provider; per-recipient refusals are data, not errors."""

    def __init__(self, message: str = "", *, settled: Iterable[SendResult] = (), unknown: Iterable[int] = ()) -> None:
        super().__init__(message)
        # A partial batch: these were answered (or may have been taken) before the failure, so a retry skips them.
        self.settled: tuple[SendResult, ...] = tuple(settled)
        self.unknown: tuple[int, ...] = tuple(unknown)


class ProviderUnavailable(ProviderError):
    """The provider could not take the batch now; retrying the same batch later is safe."""


class ProviderAuthError(ProviderError):
    """The provider refused our credentials; sending must pause until the operator fixes them."""


class ProviderRequestError(ProviderError):
    """The provider refused the whole request as invalid; the batch fails with the reason, no retry."""


class ProviderAmbiguous(ProviderError):
    """A timeout after the request was sent: the outcome is unknown (see the README's timeout policy)."""
