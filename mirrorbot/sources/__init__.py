"""Listing strategies: what an upstream namespace holds, behind one :class:`Source` interface."""

from mirrorbot.sources.base import (
    STRATEGIES,
    ListedRepository,
    ListedTag,
    Listing,
    ListingError,
    Source,
    make_source,
)

__all__ = [
    "STRATEGIES",
    "ListedRepository",
    "ListedTag",
    "Listing",
    "ListingError",
    "Source",
    "make_source",
]
