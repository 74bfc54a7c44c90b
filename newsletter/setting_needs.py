"""What the settings a command may require are for and how to set each, and where plain http is allowed.

``Settings.require`` names every missing one at once with these words, so an operator fixes them in one go.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_address

ENV_PREFIX = "NEWSLETTER_"
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})
# What each setting a command may require is for, and how to set it: said together for every one missing.
HOW_TO_SET = {
    "secret_key": "signed links need it. Generate one with `newsletter secret` and put it in .env",
    "postal_address": "the footer of every issue must show the sender's postal address; put it in .env, e.g. "
                      "NEWSLETTER_POSTAL_ADDRESS=\"Weekly AI Tool Verdicts, 1 Main Street, Springfield\"",
    "provider_api_key": "the {provider} provider needs it: the service's API key (Postmark server token, "
                        "SendGrid or Resend API key, Mailgun sending key)",
    "mailgun_domain": "the mailgun provider sends for that domain, e.g. NEWSLETTER_MAILGUN_DOMAIN=news.example.com",
    "ses_region": "the ses provider sends in that AWS region, e.g. NEWSLETTER_SES_REGION=eu-west-1",
    "ses_access_key_id": "the ses provider signs every request with an IAM access key allowed ses:SendEmail",
    "ses_secret_access_key": "the secret of that IAM access key",
}
PROVIDER_NEEDS: dict[str, tuple[str, ...]] = {
    "postmark": ("provider_api_key",), "sendgrid": ("provider_api_key",), "resend": ("provider_api_key",),
    "mailgun": ("provider_api_key", "mailgun_domain"),
    "ses": ("ses_region", "ses_access_key_id", "ses_secret_access_key"),
}


def is_local(host: str) -> bool:
    """Whether ``host`` is this machine (localhost or a loopback address), where plain http is fine."""
    host = host.strip("[]").lower()
    if host in LOCAL_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def not_set(names: Sequence[str], *, provider: str) -> str:
    """The message for settings ``names`` (field names) that are not set: one line each, with how to set it."""
    lines = [f"{ENV_PREFIX}{name.upper()} is not set: {HOW_TO_SET[name].format(provider=provider)}" for name in names]
    if len(lines) == 1:
        return lines[0]
    return (f"{len(lines)} settings this command needs are not set (in the environment or .env):\n  "
            + "\n  ".join(lines))
