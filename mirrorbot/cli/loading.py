"""Importing what a command runs: with the cyclic collector paused, then frozen.

Commands import their modules inside their own body (start-up: each loads only what
it uses). :func:`mirrorbot.__main__.run` keeps the collector paused from the entry
point through typer's parsing; the end of a command's imports is the end of
start-up. Pydantic's schemas, httpx and GitPython create tens of thousands of
long-lived objects; collecting over them while they are created cost ~60 ms of a
no-op sync here. Frozen afterwards, they are never scanned again.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from mirrorbot.collector import collector_paused, start_up_done

__all__ = ["loading"]


@contextmanager
def loading() -> Iterator[None]:
    """``with loading(): from mirrorbot.jobs... import ...`` at the top of a command."""
    with collector_paused(freeze=True):
        yield
    start_up_done()
