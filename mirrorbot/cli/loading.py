"""Importing what a command runs: with the cyclic collector paused, then frozen.

Commands import their modules inside their own body (start-up: each loads only what
it uses), so those imports run after :func:`mirrorbot.__main__.run` has restarted the
collector. Pydantic's schemas, httpx and GitPython create tens of thousands of
long-lived objects; collecting over them while they are created cost ~60 ms of a
no-op sync here. Frozen afterwards, they are never scanned again.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from mirrorbot.collector import collector_paused

__all__ = ["loading"]


@contextmanager
def loading() -> Iterator[None]:
    """``with loading(): from mirrorbot.jobs... import ...`` at the top of a command."""
    with collector_paused():
        yield
    gc.freeze()
