"""Which requests to a redirect are clicks, and which are scanner traffic (followed, never counted).

Mail security gateways and some clients fetch every link of a message as it arrives, and link checkers send HEAD.
The rule, in the order it is applied:

1. A HEAD request is not a click (a person's browser follows a link with GET).
2. A request whose User-Agent names a known link scanner or mail proxy (:data:`SCANNER_AGENTS`, matched as a
   case-insensitive substring), or that sends none at all, is not a click.
3. A request within :data:`EARLY` of the message's submission is not a click: with the reader known, their own
   delivery's submission; without, any submission of that issue in the :data:`EARLY` before the request (so
   during a send, clicks arriving just after a batch are left out too: the price of not knowing the reader).
   Before the issue's first submission no reader has it: such a click is an editor's (a preview, a test send).

Rules 1 and 2 are applied by the redirect as it answers; rule 3 by the click writer, which reads the submissions.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

# A constant, not a setting: scanners fetch within a second or two of delivery, and delivery follows submission by
# seconds; ten seconds leaves them out and costs a person only the clicks they could not have made yet.
EARLY = timedelta(seconds=10)

SCANNER_AGENTS = (
    "safelinks",            # Microsoft Defender for Office 365 Safe Links
    "bingpreview",          # Microsoft's link preview, used by Outlook and Defender
    "existence discovery",  # Microsoft Office checking a link before opening it
    "proofpoint",           # Proofpoint URL Defense
    "mimecast",             # Mimecast URL Protect
    "barracuda",            # Barracuda Email Security Gateway / Link Protection
    "googleimageproxy",     # Gmail's image proxy
    "google-safety",        # Google Safe Browsing's fetcher
    "yahoomailproxy",       # Yahoo Mail's proxy
    "symantec",             # Symantec / Broadcom Email Security.cloud
    "messagelabs",          # Symantec's former MessageLabs name
    "trend micro",          # Trend Micro email security
    "forcepoint",           # Forcepoint email security
    "ironport",             # Cisco Secure Email (IronPort)
    "sophos",               # Sophos Email
    "fireeye",              # FireEye / Trellix Email Security
    "zscaler",              # Zscaler's URL scanning
)
_SCANNER = re.compile("|".join(re.escape(agent) for agent in SCANNER_AGENTS), re.IGNORECASE)


def is_scanner(user_agent: str | None) -> bool:
    """Whether a request with this User-Agent is a link scanner's (a missing or empty one is taken as one)."""
    return not (user_agent or "").strip() or _SCANNER.search(user_agent or "") is not None


def early_for_reader(at: datetime, submitted_at: datetime) -> bool:
    """A click at ``at`` by a reader whose message was submitted at ``submitted_at`` came too early to be theirs."""
    return at < submitted_at + EARLY


def early_for_issue(at: datetime, submissions: Sequence[datetime]) -> bool:
    """A click at ``at`` without a known reader follows one of the issue's ``submissions`` (sorted, the first
    included) too closely, or comes before the first: no reader had the issue yet (a preview, a test send)."""
    i = bisect.bisect_right(submissions, at)
    return i == 0 or at - submissions[i - 1] < EARLY
