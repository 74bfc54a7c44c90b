"""Email addresses: the one place that checks one (syntax only, never DNS) and says what is wrong with it.

Subscribers, editors and settings all go through :func:`check`; each caller words the refusal for its own reader
(a form, the CLI, a setting), but none calls ``email_validator`` itself.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, ValidatedEmail, validate_email

from newsletter.errors import AddressError


def check(address: str) -> ValidatedEmail:
    """``address`` read as an email address (syntax checked, no DNS lookups); AddressError says what is wrong."""
    try:
        return validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise AddressError(str(exc)) from None


def stored_form(address: str) -> str:
    """The address as stored: lowercased, an internationalised domain in its ASCII (IDNA) form; AddressError if
    invalid. The ASCII domain routes everywhere and keeps one row per reader whichever form they typed; a non-ASCII
    local part has no ASCII form and is kept (SMTP sends it only where the server offers SMTPUTF8)."""
    checked = check(address)
    return f"{checked.local_part}@{checked.ascii_domain}".lower()
