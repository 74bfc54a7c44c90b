"""The one owner of the Delivery table: every write to it goes through this package.

``batches`` makes the batches a send claims (fixed when deliveries get their due time), ``leases`` holds a
send's writes (claim a batch under a lease, renew it, record its results fenced by the claim, release it,
clear expired leases) and ``queue`` the writes around a send (queue readers, withdraw a
reader's or a cancelled issue's queued deliveries, requeue failures, mark what webhooks report). Every status
change is an ``UPDATE … WHERE status = <the one it changes from>``; each query is a named function whose
docstring says why its shape is what it is.
"""

from __future__ import annotations

from newsletter.deliveries.batches import BATCHES, TABLE
from newsletter.deliveries.leases import (
    UNKNOWN_OUTCOME,
    Claim,
    Keeper,
    claim,
    record,
    release,
    release_expired,
    renew,
)
from newsletter.deliveries.queue import (
    failed_where,
    issues_with_failed,
    mark_reported,
    queue,
    queued_left,
    remove_unrendered,
    requeue_failed,
    reschedule_reader,
    schedule,
    settled_subscribers,
    subscriber_of,
    withdraw_issue,
    withdraw_reader,
)
from newsletter.deliveries.settle import (
    issues_with_unknown,
    settle_accepted,
    settle_reported,
    settle_unsent,
    unknown_outcomes,
)

__all__ = ["BATCHES", "TABLE", "UNKNOWN_OUTCOME", "Claim", "Keeper", "claim", "failed_where", "issues_with_failed",
           "issues_with_unknown", "mark_reported", "queue", "queued_left", "record", "release", "release_expired",
           "remove_unrendered", "renew", "requeue_failed", "reschedule_reader", "schedule", "settle_accepted",
           "settle_reported", "settle_unsent", "settled_subscribers", "subscriber_of", "unknown_outcomes",
           "withdraw_issue", "withdraw_reader"]
