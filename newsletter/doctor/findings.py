"""What every check returns: one frozen ``Finding`` — its name, pass / warn / fail (or skip when it does not apply),
what was found, and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["pass", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome; ``fix`` is empty when there is nothing to do."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """The finding as JSON-ready fields."""
        return asdict(self)


def passed(name: str, detail: str) -> Finding:
    """A check that found nothing wrong."""
    return Finding(name, "pass", detail)


def warned(name: str, detail: str, fix: str) -> Finding:
    """Something to look at that does not stop mail going out."""
    return Finding(name, "warn", detail, fix)


def failed(name: str, detail: str, fix: str) -> Finding:
    """Something that breaks sending, delivery or unsubscribing: the doctor exits non-zero."""
    return Finding(name, "fail", detail, fix)


def skipped(name: str, detail: str) -> Finding:
    """A check that does not apply to this installation (the detail says why)."""
    return Finding(name, "skip", detail)
