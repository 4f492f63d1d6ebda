"""Listing strategies: what an upstream namespace holds, behind one :class:`Source` interface."""

from mirrorbot.engine.sources.base import (
    STRATEGIES,
    EmptyListingError,
    ListedRepository,
    ListedTag,
    Listing,
    ListingError,
    Source,
    make_source,
)

__all__ = [
    "STRATEGIES",
    "EmptyListingError",
    "ListedRepository",
    "ListedTag",
    "Listing",
    "ListingError",
    "Source",
    "make_source",
]
