"""SQLModel tables of the core. Rows stay inside catalog, issues and dispatch; stages see values."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from newsletter.statuses import DeliveryStatus, IssueStatus


class ToolRow(SQLModel, table=True):
    """A tool, keyed by its slug."""

    __tablename__ = "tool"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True, max_length=200)
    name: str = Field(max_length=200)
    tagline: str = Field(sa_column=Column(Text, nullable=False))
    description: str = Field(sa_column=Column(Text, nullable=False))
    category: str = Field(index=True, max_length=100)
    pricing_tier: str = Field(max_length=10)
    pricing_note: str | None = Field(default=None, sa_column=Column(Text))
    published: date = Field(index=True)


class ComparisonRow(SQLModel, table=True):
    """A head-to-head comparison page, keyed by its slug."""

    __tablename__ = "comparison"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True, max_length=300)
    title: str = Field(max_length=400)
    published: date = Field(index=True)


class SideRow(SQLModel, table=True):
    """One tool inside one comparison (position 0 or 1), with the published panel and community figures.

    The published figures are nullable: a page may state only a percent, or nothing; the panel verdict is
    then derived from the reviews (see ``catalog.panel``).
    """

    __tablename__ = "comparison_side"
    __table_args__ = (UniqueConstraint("comparison_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", index=True, ondelete="CASCADE")
    position: int
    tool_id: int = Field(foreign_key="tool.id", index=True)
    panel_percent: int | None = None
    panel_ship: int | None = None
    panel_size: int | None = None
    panel_label: str | None = Field(default=None, max_length=10)
    community_votes: int | None = None
    community_ship_percent: int | None = None


class ReviewRow(SQLModel, table=True):
    """One persona's review of one side of a comparison."""

    __tablename__ = "review"
    __table_args__ = (UniqueConstraint("side_id", "persona"),)

    id: int | None = Field(default=None, primary_key=True)
    side_id: int = Field(foreign_key="comparison_side.id", index=True, ondelete="CASCADE")
    persona: str = Field(max_length=40)
    position: int
    score: int | None = None
    ship: bool | None = None
    text: str = Field(sa_column=Column(Text, nullable=False))


class IssueRow(SQLModel, table=True):
    """A numbered, persisted digest; one per publication week."""

    __tablename__ = "issue"

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True, index=True)
    week: str = Field(unique=True, max_length=10)
    subject: str = Field(max_length=300)
    status: str = Field(default=IssueStatus.DRAFT, max_length=12, index=True)
    comparison_count: int = 0
    created_at: datetime
    sent_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    # The editor's changes, kept as intent so that a re-render from the catalog applies them again.
    note: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    subject_override: str | None = Field(default=None, max_length=300)
    preheader_override: str | None = Field(default=None, sa_column=Column(Text))
    arrangement: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    send_at: datetime | None = None
    approved_by: str | None = Field(default=None, max_length=200)
    review_requested_at: datetime | None = None


class IssueCohortRow(SQLModel, table=True):
    """The rendered email of one cohort of one issue, placeholders intact."""

    __tablename__ = "issue_cohort"
    __table_args__ = (UniqueConstraint("issue_id", "cohort_key"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True, ondelete="CASCADE")
    cohort_key: str = Field(max_length=600)
    subject: str = Field(max_length=300)
    preheader: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    comparison_count: int = 0


class DeliveryRow(SQLModel, table=True):
    """One (issue, subscriber) pair: queued → submitted, or rejected / failed / withdrawn; later bounced or
    complained. Unique per pair; only ``newsletter.deliveries`` writes it (statuses: ``DeliveryStatus``)."""

    __tablename__ = "delivery"
    # The index over (issue, status, due time, id) serves what asks about an issue's queue (how much is left,
    # which issues have deliveries due, its waves); claims go through the batch table instead.
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id"),
        Index("ix_delivery_claim", "issue_id", "status", "due_at", "id"),
        # Clicks within seconds of an issue's submissions are scanner traffic: the click writer looks them up.
        Index("ix_delivery_submitted", "issue_id", "submitted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True, ondelete="CASCADE")
    subscriber_id: int = Field(index=True)
    cohort_key: str = Field(max_length=600)
    status: str = Field(default=DeliveryStatus.QUEUED, max_length=12, index=True)
    # The batch it is claimed with (``DeliveryBatchRow``), fixed when it gets its due time; None until then.
    batch_id: int | None = Field(default=None, index=True)
    attempts: int = 0
    provider_id: str | None = Field(default=None, max_length=300)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    submitted_at: datetime | None = None
    # When the delivery may be claimed (its wave); set when the issue starts sending, None before that.
    due_at: datetime | None = None
    # When a failure was written: a failure with an unknown outcome is reconciled for NEWSLETTER_RECONCILE_HOURS.
    failed_at: datetime | None = None


class DeliveryBatchRow(SQLModel, table=True):
    """Deliveries of one issue due at one time, claimed together under one lease: the unit of a send.

    Its ``key`` names the batch to the service (an idempotency key) and stays the same on every retry of a batch
    that may have reached it; ``fresh`` says no sender can have sent it yet. A claim writes this row only
    (``lease_until``, ``lease_key``, ``claims``), so each delivery row is written once, with its result.
    """

    __tablename__ = "delivery_batch"
    # Claims take an issue's open batches that are due, earliest due time first, then in id order.
    __table_args__ = (Index("ix_delivery_batch_claim", "issue_id", "done", "due_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", ondelete="CASCADE")
    due_at: datetime
    key: str = Field(max_length=40)
    fresh: bool = True
    # Every claim of this batch so far: added to its deliveries' ``attempts`` when their results are written.
    claims: int = 0
    lease_until: datetime | None = None
    # The claim holding the lease: a new key on every claim, so a sender whose lease ran out writes nothing.
    lease_key: str | None = Field(default=None, max_length=32)
    # No delivery of it is queued any more (all have an outcome, or the issue was cancelled).
    done: bool = False


class EditorRow(SQLModel, table=True):
    """Someone who may use the editor's desk; the password is kept only as a salted scrypt hash."""

    __tablename__ = "editor"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    email: str | None = Field(default=None, max_length=320)
    password_hash: str = Field(max_length=400)
    created_at: datetime


class EditorSessionRow(SQLModel, table=True):
    """One signed-in editor on one device; the cookie holds a random id and only its SHA-256 is kept here."""

    __tablename__ = "editor_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    editor: str = Field(index=True, max_length=100)
    fingerprint: str = Field(max_length=64)  # of the password hash it was opened with: a new password ends it
    created_at: datetime
    expires_at: datetime = Field(index=True)


class EditorLoginFailureRow(SQLModel, table=True):
    """Recent failed sign-ins under one name, an editor's or not: unknown names are counted alike."""

    __tablename__ = "editor_login_failure"

    name: str = Field(primary_key=True, max_length=100)
    failures: int
    last_failure_at: datetime
    locked_until: datetime | None = None


class CatalogSyncRow(SQLModel, table=True):
    """The last fetch of the site's verdict export: validators for the next conditional GET, and its outcome."""

    __tablename__ = "catalog_sync"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(unique=True, max_length=2000)
    etag: str | None = Field(default=None, max_length=400)
    last_modified: str | None = Field(default=None, max_length=100)
    checked_at: datetime | None = None
    changed_at: datetime | None = None
    warning: str | None = Field(default=None, sa_column=Column(Text))


class WorkerHeartbeatRow(SQLModel, table=True):
    """A ``newsletter worker`` process's last sign of life, written every few seconds; the doctor reads it."""

    __tablename__ = "worker_heartbeat"

    id: int | None = Field(default=None, primary_key=True)
    worker: str = Field(unique=True, max_length=200)  # host:pid, so a restarted worker is a new row
    started_at: datetime
    seen_at: datetime = Field(index=True)


class VoteRow(SQLModel, table=True):
    """A reader's Ship or Skip on one tool of one comparison: one row per reader per tool, the latest counts.

    Comparison and tool are named by slug, as the site and the catalog name them (a re-import keeps slugs, not side
    ids). ``subscriber_id`` is set to NULL when the reader is erased: the vote still counts, nobody's it is.
    Kept apart from the site's Community figure (``SideRow.community_*``): never summed into it.
    """

    __tablename__ = "vote"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "comparison", "tool"),
        Index("ix_vote_comparison_tool", "comparison", "tool"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int | None = Field(default=None, index=True)
    comparison: str = Field(max_length=300)
    tool: str = Field(max_length=200)
    issue_number: int = Field(index=True)  # the issue whose link cast the latest vote
    choice: str = Field(max_length=4)  # ship | skip
    created_at: datetime
    updated_at: datetime = Field(index=True)


class IssueLinkRow(SQLModel, table=True):
    """A link of an issue that leaves for the site, numbered within the issue: ``/r/{issue}/{link}`` redirects to
    ``target``. Written when the issue is rendered and never changed or removed, so every mailed link keeps working
    (``clicks.links``)."""

    __tablename__ = "issue_link"
    __table_args__ = (UniqueConstraint("issue_id", "link"), UniqueConstraint("issue_id", "target"))

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True, ondelete="CASCADE")
    link: int  # the number in the URL, 1, 2, … in the order the links were first rendered
    target: str = Field(max_length=2000)
    comparison: str | None = Field(default=None, max_length=300)  # the comparison's slug, when it is one's link
    label: str = Field(max_length=400)
    tracked: bool = False  # rendered with the reader's token (NEWSLETTER_TRACK_READERS)


class ClickRow(SQLModel, table=True):
    """One counted click of a link of an issue (``clicks.recorder`` writes it; scanner traffic is never written).

    ``subscriber_id`` is set only when readers are tracked and the token was good; erasing the reader clears it.
    ``first_on_link`` and ``first_in_issue`` mark the reader's first click there, written with the click, so unique
    readers stay countable after the reader's link to the click is gone."""

    __tablename__ = "click"
    __table_args__ = (Index("ix_click_issue_link", "issue_id", "link_id"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", ondelete="CASCADE")
    link_id: int = Field(foreign_key="issue_link.id", ondelete="CASCADE")
    subscriber_id: int | None = Field(default=None, index=True)
    clicked_at: datetime
    first_on_link: bool = False
    first_in_issue: bool = False
