"""The one interface every listing strategy implements.

A :class:`Source` turns an upstream namespace into a :class:`Listing`: frozen
values, repositories sorted by path and tags by name, with everything it
refused to return (invalid names, repositories that failed to list) spelled
out in ``skipped``. Only a failure of the top-level listing raises, as
:class:`ListingError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    pass

__all__ = [
    "STRATEGIES",
    "ListedRepository",
    "ListedTag",
    "Listing",
    "Source",
]

STRATEGIES = ("catalog", "gcr", "dockerhub", "images", "storage", "quay")


@dataclass(frozen=True, slots=True)
class ListedTag:
    """One tag as the listing gave it; digest, type and time only when the listing carries them."""

    name: str
    digest: str | None = None
    media_type: str | None = None
    uploaded: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListedRepository:
    """A repository below the namespace (``pause``, ``etcd/backup``) and its tags, sorted."""

    path: str
    tags: tuple[ListedTag, ...]


@dataclass(frozen=True, slots=True)
class Listing:
    """What one namespace holds upstream. ``skipped`` says what was left out, and why."""

    source: str
    repositories: tuple[ListedRepository, ...]
    skipped: tuple[str, ...]


class Source(Protocol):
    async def list(self) -> Listing: ...
