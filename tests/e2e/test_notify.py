"""Mirror on push: a real registry's notifications reach `mirrorbot notify`, which syncs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from mirrorbot.config import parse_config
from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.registry import LocalRegistry, free_port
from mirrorbot.engine.registry.retry import RetryPolicy
from mirrorbot.integrations.github.dispatch import github_dispatcher
from mirrorbot.jobs.context.push import PushSync
from mirrorbot.jobs.context.runs import SyncOutcome
from mirrorbot.jobs.context.wiring import open_context
from mirrorbot.jobs.notify import MAX_PENDING, Batcher, NotifyApp, references_from_envelope
from mirrorbot.reference import Reference
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.token_issuer import TokenIssuer
from tests.support.world import SECRET_ENV, World, make_world

SECRET = "notify-shared-secret-0123456789"
INDEX = "application/vnd.oci.image.index.v1+json"


def namespaces(text: str = "") -> tuple:  # type: ignore[type-arg]
    config = parse_config(
        f"""
mirror: {{registry: mirror.example, namespace: m}}
namespaces:
  - source: registry.internal:5000/team
    exclude: ['.*-rc\\d*']
  - source: registry.internal:5000/team/special
{text}"""
    )
    return config.namespace_plans()


def event(
    repository: str, tag: str | None, media_type: str = INDEX, action: str = "push"
) -> dict[str, object]:
    target: dict[str, object] = {
        "mediaType": media_type,
        "digest": "sha256:" + "a" * 64,
        "repository": repository,
        "url": f"http://registry.internal:5000/v2/{repository}/manifests/sha256:{'a' * 64}",
    }
    if tag is not None:
        target["tag"] = tag
    return {"action": action, "target": target, "request": {"host": "registry.internal:5000"}}


@pytest.mark.hostile("webhook envelopes")
def test_envelope_filtering() -> None:
    envelope = {
        "events": [
            event("team/app", "v1"),
            event("team/app", None),  # an index's child: untagged, follows the tagged push
            event("team/app", "v2", media_type="application/vnd.docker.image.rootfs.diff.tar.gzip"),
            event("team/app", "v1", action="pull"),
            event("team/app", "v3-rc1"),  # excluded by the namespace's filters
            event("other/app", "v1"),  # not a configured namespace
            event("team/special/tool", "1.0"),  # the longer namespace owns it
            event("team/UPPER", "v1"),  # hostile: not a valid name
        ]
    }
    found, ignored = references_from_envelope(envelope, namespaces())
    assert [str(r) for r in found] == [
        "registry.internal:5000/team/app:v1",
        "registry.internal:5000/team/special/tool:1.0",
    ]
    assert len(ignored) == 3
    assert references_from_envelope({"nope": 1}, namespaces())[0] == []


@pytest.mark.hostile("webhook envelopes")
async def test_the_endpoint_wants_the_secret_and_json() -> None:
    batches: list[tuple[Reference, ...]] = []

    async def runner(references: tuple[Reference, ...]) -> None:
        batches.append(references)

    app = NotifyApp(namespaces(), SECRET, runner)
    transport = httpx.ASGITransport(app=app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        body = {"events": [event("team/app", "v1")]}
        assert (await client.post("/events", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert (await client.post("/events", json=body, headers=wrong)).status_code == 401
        good = {"Authorization": f"Bearer {SECRET}"}
        assert (await client.post("/events", content=b"{oops", headers=good)).status_code == 400
        accepted = await client.post("/events", json=body, headers=good)
        assert accepted.status_code == 200
        assert accepted.json()["accepted"] == ["registry.internal:5000/team/app:v1"]
    assert app.batcher.pending == {Reference("registry.internal:5000", "team/app", "v1")}


@pytest.mark.hostile("webhook envelopes")
async def test_oversized_or_deeply_nested_envelopes_are_refused_cheaply() -> None:
    """A 1 GiB body is refused after at most a few MiB read; a 100,000-deep JSON is a 400."""

    async def runner(references: tuple[Reference, ...]) -> None:
        raise AssertionError("nothing should be synced")

    app = NotifyApp(namespaces(), SECRET, runner)
    good = {"Authorization": f"Bearer {SECRET}"}
    sent = [0]

    async def endless() -> AsyncIterator[bytes]:
        chunk = b" " * 65536
        for _ in range(16384):  # 1 GiB if anyone read it all
            sent[0] += 1
            yield chunk

    transport = httpx.ASGITransport(app=app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        declared = {**good, "Content-Length": str(1 << 30)}
        big = await client.post("/events", content=b"{}", headers=declared)
        assert big.status_code == 413
        streamed = await client.post("/events", content=endless(), headers=good)
        assert streamed.status_code == 413
        assert sent[0] * 65536 < 8 * 1024 * 1024, f"read {sent[0]} chunks of a 1 GiB body"
        deep = b"[" * 100_000 + b"]" * 100_000
        nested = await client.post("/events", content=deep, headers=good)
        assert nested.status_code == 400
    assert app.batcher.pending == set()


@pytest.mark.hostile("webhook envelopes")
async def test_a_steady_stream_of_pushes_cannot_postpone_the_batch_forever() -> None:
    """Events every 50 ms never leave a 200 ms quiet gap; the batch still starts by max_wait."""
    ran = asyncio.Event()

    async def runner(references: tuple[Reference, ...]) -> None:
        ran.set()

    batcher = Batcher(runner, quiet=0.2, max_wait=0.6)
    batcher.start()
    try:
        for number in range(200):  # 10 s of pushes at most
            batcher.add([Reference("registry.internal:5000", "team/app", f"v{number}")])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ran.wait(), timeout=0.05)
            if ran.is_set():
                break
        assert ran.is_set(), "the batch never started while pushes kept coming"
        assert number < 100
    finally:
        await batcher.stop()


def test_pending_references_are_bounded() -> None:
    async def runner(references: tuple[Reference, ...]) -> None:
        return None

    batcher = Batcher(runner)
    many = [
        Reference("registry.internal:5000", "team/app", f"v{n}") for n in range(MAX_PENDING + 5)
    ]
    batcher.add(many)
    batcher.add(many[:3])  # already pending: not dropped again
    assert len(batcher.pending) == MAX_PENDING
    assert batcher.dropped == 5


@pytest.fixture
def notified_world(
    tmp_path: Path, token_registry: LocalRegistry, ns: str
) -> Iterator[tuple[World, int]]:
    """An upstream registry configured to notify mirrorbot on loopback."""
    port = free_port()
    upstream = LocalRegistry(
        tmp_path / "upstream",
        name="notifying",
        extra={
            "notifications": {
                "endpoints": [
                    {
                        "name": "mirrorbot",
                        "url": f"http://127.0.0.1:{port}/events",
                        "headers": {"Authorization": [f"Bearer {SECRET}"]},
                        "timeout": "2s",
                        "threshold": 3,
                        "backoff": "1s",
                    }
                ]
            }
        },
    ).start()
    try:
        yield make_world(tmp_path, upstream, token_registry, ns), port
    finally:
        upstream.stop()


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition (the registry delivers notifications asynchronously)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_push_is_mirrored_within_seconds(notified_world: tuple[World, int]) -> None:
    world, port = notified_world
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("MIRRORBOT_", "GITHUB_"))
    }
    environment.update(
        {"HOME": str(world.tmp / "home"), "MIRRORBOT_NOTIFY_SECRET": SECRET, **SECRET_ENV}
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mirrorbot",
            "notify",
            "--config",
            str(world.config),
            "--listen",
            f"127.0.0.1:{port}",
            "--quiet",
            "0.5",
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: _healthy(port), 30, "mirrorbot notify to listen")
        image = ImageFactory(world.ns).index("pushed", attestations=True)
        world.seed("pushed", "v1", image)
        state_path = f"state/{world.upstream.host}/{world.ns}.json"

        def mirrored() -> bool:
            try:
                state = json.loads(world.remote_file(state_path))
            except subprocess.CalledProcessError:
                return False
            return "v1" in state["images"].get("pushed", {}).get("tags", {})

        _wait_for(mirrored, 60, "the pushed tag in state")
        target = f"{world.mirror.host}/{world.mirror_ns}/pushed:v1"
        assert skopeo.manifest_digest(target, CREDS) == image.digest
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["batches"] == 1  # the burst of events (blobs, children, tag) became one sync
        changelog = world.remote_file("state/CHANGELOG.md")
        assert changelog.count(f"{world.ns}/pushed:v1` →") == 1
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert SECRET not in output
    assert CREDS[1] not in output


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_notify_refuses_to_start_without_a_secret(world: World) -> None:
    result = world.run("notify", "--listen", "127.0.0.1:1")
    assert result.returncode == 2
    assert "MIRRORBOT_NOTIFY_SECRET" in result.stderr


@pytest.mark.parametrize("listen", [":99999", "127.0.0.1", "127.0.0.1:http", "[::1]:-1"])
def test_a_bad_listen_address_is_one_usage_line(world: World, listen: str) -> None:
    result = world.run("notify", "--listen", listen, env={"MIRRORBOT_NOTIFY_SECRET": SECRET})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: --listen {listen!r}: expected HOST:PORT with a port 0-65535"
    ]


def test_a_port_in_use_is_one_line_and_exit_1(world: World) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = world.run(
            "notify", "--listen", f"127.0.0.1:{port}", env={"MIRRORBOT_NOTIFY_SECRET": SECRET}
        )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: --listen 127.0.0.1:{port}: cannot listen there:")
    assert "in use" in lines[0]


async def test_dispatch_mode_sends_repository_dispatch() -> None:
    # A real HTTP API on loopback standing in for api.github.com.
    bodies: list[tuple[str, dict[str, object], str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            bodies.append(
                (self.path, json.loads(self.rfile.read(length)), self.headers["Authorization"])
            )
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = f"http://127.0.0.1:{server.server_address[1]}"
        dispatch = github_dispatcher(api, "owner/mirror", "ghp_dispatch_token", batch=2)
        references = tuple(Reference("gcr.io", f"ns/app{i}", "v1") for i in range(3))
        await dispatch(references)
    finally:
        server.shutdown()
        server.server_close()
    assert [path for path, _, _ in bodies] == ["/repos/owner/mirror/dispatches"] * 2
    assert bodies[0][1] == {
        "event_type": "mirror-images",
        "client_payload": {"images": ["gcr.io/ns/app0:v1", "gcr.io/ns/app1:v1"]},
    }
    assert bodies[0][2] == "Bearer ghp_dispatch_token"


async def test_batches_share_one_pool_and_its_tokens(
    world: World, token_issuer: TokenIssuer
) -> None:
    """Two batches of one listener: the second reuses the first's pool, so no new token."""
    context = open_context(world.config, world.environment())
    for tag in ("v1", "v2"):
        world.seed("app", tag, ImageFactory(f"{world.ns}:{tag}").image("app"))
    outcomes: list[SyncOutcome] = []
    runner = PushSync(context, push=True, done=lambda _refs, outcome: outcomes.append(outcome))

    def mirror_tokens() -> int:
        return sum(
            1
            for asked in token_issuer.requests
            if any(f"{world.mirror_ns}/" in scope for scope in asked.scopes)
        )

    async with runner:
        await runner((Reference(world.upstream.host, f"{world.ns}/app", "v1"),))
        after_first = mirror_tokens()
        await runner((Reference(world.upstream.host, f"{world.ns}/app", "v2"),))
        after_second = mirror_tokens()
    assert after_first >= 1
    assert after_second == after_first  # a pool per batch would have asked again
    assert runner.pools_opened == 1
    assert [len(outcome.report.changes) for outcome in outcomes] == [1, 1]
    assert outcomes[1].pushed
    tags = world.state()["images"]["app"]["tags"]  # type: ignore[index]
    assert set(tags) == {"v1", "v2"}


class _GitHubApi:
    """A loopback stand-in for api.github.com answering ``statuses`` in turn (then 204)."""

    def __init__(self, statuses: list[tuple[int, dict[str, str]]]) -> None:
        self.statuses = statuses
        self.authorizations: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                api.authorizations.append(self.headers["Authorization"])
                status, headers = api.statuses.pop(0) if api.statuses else (204, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                body = b"" if status == 204 else b'{"message": "try later"}'
                if status != 204:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _GitHubApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


FAST = RetryPolicy(attempts=4, timeout=None, wait_initial=0, wait_max=0)
TOKEN = "ghp_dispatch_token_do_not_print"


async def test_dispatch_retries_github_5xx_and_429(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [(503, {}), (429, {"Retry-After": "0"}), (502, {})]
    with _GitHubApi(answers) as api:
        async with github_dispatcher(api.url, "owner/mirror", TOKEN, retry=FAST) as dispatch:
            await dispatch((Reference("gcr.io", "ns/app", "v1"),))
    assert api.authorizations == [f"Bearer {TOKEN}"] * 4  # three refusals, then 204
    assert "failed:" not in caplog.text
    assert TOKEN not in caplog.text


async def test_dispatch_gives_up_on_a_refusal_in_one_line_without_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with _GitHubApi([(401, {}), (401, {})]) as api:
        await github_dispatcher(api.url, "owner/mirror", TOKEN, retry=FAST)(
            (Reference("gcr.io", "ns/app", "v1"),)
        )
    assert len(api.authorizations) == 1  # a 401 is not retried
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "repository_dispatch to owner/mirror failed" in errors[0].getMessage()
    assert "401" in errors[0].getMessage()
    assert TOKEN not in caplog.text


async def test_stopping_waits_for_the_batch_in_flight(world: World) -> None:
    """The server stopping cancels the batcher; the sync already running still finishes."""
    context = open_context(world.config, world.environment())
    world.seed("app", "v1", ImageFactory(f"{world.ns}:stop").image("app"))
    runner = PushSync(context, push=True)
    async with runner:
        batch = asyncio.ensure_future(
            runner((Reference(world.upstream.host, f"{world.ns}/app", "v1"),))
        )
        await asyncio.sleep(0)  # the batch has started its run
        batch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await batch
    tags = world.state()["images"]["app"]["tags"]  # type: ignore[index]
    assert set(tags) == {"v1"}
