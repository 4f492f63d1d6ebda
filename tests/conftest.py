"""Real registries for the whole test session, on loopback with temp storage.

- ``source_registry``: no auth, ``catalog.maxentries`` small enough to force paging.
- ``plain_registry``: no auth.
- ``basic_registry``: htpasswd Basic auth.
- ``token_registry``: ``auth: token`` backed by :class:`TokenIssuer`.

Tests keep out of each other's way by using repository names derived from
their own node id (the ``ns`` fixture).

Under ``pytest-xdist`` (the README's test command) every worker is its own
session: it starts its own registries and token issuer, on ports the kernel
picks, under its own ``tmp_path_factory`` directory. Tests marked
``@pytest.mark.slow`` are ordered so that the scheduler does not leave a long
scenario for last on one worker (``_slow_first``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import bcrypt
import pytest

from mirrorbot.demo.registry import LocalRegistry
from tests.support.reliability import LEDGER, Recorder, hostile_category
from tests.support.token_issuer import TokenIssuer

if TYPE_CHECKING:
    from tests.support.world import World

USER = "mirror"
PASSWORD = "s3cret-Pa55word-for-tests"


@pytest.fixture(scope="session")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registries")


def _started(registry: LocalRegistry) -> Iterator[LocalRegistry]:
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def source_registry(registry_root: Path) -> Iterator[LocalRegistry]:
    yield from _started(
        LocalRegistry(registry_root / "source", name="source", extra={"catalog": {"maxentries": 3}})
    )


@pytest.fixture(scope="session")
def plain_registry(registry_root: Path) -> Iterator[LocalRegistry]:
    yield from _started(LocalRegistry(registry_root / "plain", name="plain"))


@pytest.fixture(scope="session")
def basic_registry(registry_root: Path) -> Iterator[LocalRegistry]:
    workdir = registry_root / "basic"
    workdir.mkdir()
    htpasswd = workdir / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"{USER}:{hashed}\n")
    auth = {"htpasswd": {"realm": "mirrorbot-test", "path": str(htpasswd)}}
    yield from _started(LocalRegistry(workdir, name="basic", auth=auth))


@pytest.fixture(scope="session")
def token_issuer(registry_root: Path) -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(registry_root / "token-issuer", users={USER: PASSWORD}).start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture(scope="session")
def token_registry(registry_root: Path, token_issuer: TokenIssuer) -> Iterator[LocalRegistry]:
    yield from _started(
        LocalRegistry(registry_root / "token", name="token", auth=token_issuer.registry_auth())
    )


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    """A repository prefix unique to this test, valid as a repository path."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    suffix = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:6]
    return f"t-{name}-{suffix}"


CREDS = (USER, PASSWORD)


@pytest.fixture
def world(
    tmp_path: Path, source_registry: LocalRegistry, token_registry: LocalRegistry, ns: str
) -> World:
    """Upstream (small catalog pages), a token-auth mirror, a config and a bare git remote."""
    from tests.support.world import make_world

    return make_world(tmp_path, source_registry, token_registry, ns)


# -- tests/RELIABILITY.md: figures recorded by the tests that earn them ----------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hostile(category): feeds hostile input; counted in tests/RELIABILITY.md",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    LEDGER.order = [item.nodeid for item in items]  # the file's order, before slow ones move up
    for item in items:
        marker = item.get_closest_marker("hostile")
        category = hostile_category(item.nodeid, None if marker is None else marker.args)
        if category is not None:
            LEDGER.hostile_tests[item.nodeid] = category
    items[:] = _slow_first(items)


def _slow_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The longest slow test (``slow(seconds=N)``) first; the other slow ones spread out.

    xdist's work stealing splits the collection into one run of tests per worker and
    lets idle workers take from the end of another's run. The longest test starts at
    once, with nothing slow queued behind it (the queue is stolen while it runs); the
    other slow ones, longest first, are spread over the whole collection, so every
    worker meets some early instead of all being left for the end.
    """

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return -1.0 if marker is None else float(marker.kwargs.get("seconds", 0))

    slow = sorted((item for item in items if seconds(item) >= 0), key=seconds, reverse=True)
    quick = [item for item in items if seconds(item) < 0]
    if not slow:
        return quick
    ordered = [slow[0]]
    rest = slow[1:]
    taken = 0
    for number, item in enumerate(rest):
        upto = len(quick) * (number + 1) // (len(rest) + 1)
        ordered += quick[taken:upto]
        ordered.append(item)
        taken = max(taken, upto)
    return ordered + quick[taken:]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    LEDGER.outcome(report.nodeid, report.when, report.outcome)


_LEDGER_KEY = "mirrorbot_reliability_ledger"


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller merges and writes
        workeroutput[_LEDGER_KEY] = json.dumps(LEDGER.records())
        return
    LEDGER.write_if_complete(Path(__file__).parent / "RELIABILITY.md")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist controller: a worker is done; take its records (outcomes came with its reports)."""
    records = getattr(node, "workeroutput", {}).get(_LEDGER_KEY)
    if records is None:
        LEDGER.workers_lost += 1  # its figures are gone: better no file than a partial one
    else:
        LEDGER.merge(json.loads(records))


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Recorder:
    """Record figures for tests/RELIABILITY.md (before asserting on them)."""
    return Recorder(LEDGER, request.node.nodeid)
