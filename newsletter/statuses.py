"""The stored statuses, one ``StrEnum`` per table: each member equals the string stored, so data is unchanged.

A delivery: ``queued → submitted``, or ``rejected`` / ``failed``, or ``withdrawn`` (a queued delivery that will not
be sent: the reader left, or the issue was cancelled); later ``bounced`` / ``complained`` from webhooks. An issue:
``draft → approved → sending → sent``, with ``paused`` and ``cancelled`` on the side. A subscriber: ``pending``
(awaiting confirmation), ``active``, and the three that suppress mail: ``unsubscribed``, ``bounced``,
``complained``.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """Where one (issue, subscriber) delivery stands."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class IssueStatus(StrEnum):
    """Where an issue stands in its lifecycle."""

    DRAFT = "draft"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class SubscriberStatus(StrEnum):
    """Whether a subscriber gets mail, and if not, why."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


# Subscribers who may still be mailed (or become so by confirming); leaving is only possible from these.
REACHABLE = frozenset({SubscriberStatus.ACTIVE, SubscriberStatus.PENDING})
# What a provider reported (a bounce, a complaint): it stops mail for good, whatever a later import says.
REPORTED = frozenset({SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED})
# Deliveries that reached the provider (bounced and complained ones were submitted first).
REACHED = (DeliveryStatus.SUBMITTED, DeliveryStatus.BOUNCED, DeliveryStatus.COMPLAINED)
