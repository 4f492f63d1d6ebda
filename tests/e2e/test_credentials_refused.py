"""Refused credentials stop a run early and say so in one line (issue 13).

A wrong mirror password used to give a line per tag (and another round of
them), hundreds of requests and no word about credentials.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from tests.conftest import CREDS
from tests.e2e.test_cli_copy import mirrorbot
from tests.support.token_issuer import TokenIssuer
from tests.support.world import World, write_config

TAGS = 100
MAX_LINES = 10


def seed_many(world: World, repositories: int = 10) -> None:
    """``TAGS`` tags over a few repositories, all one tiny image (one blob upload)."""
    image = ImageFactory(world.ns).image("tiny", layer_size=64)
    with Seeder(world.upstream.url) as seeder:
        for n in range(TAGS):
            seeder.push(f"{world.ns}/app{n % repositories}", f"v{n}", image)


def logged_requests(registry: LocalRegistry, since: int) -> int:
    """Every request the registry logged, refused ones included (``requests`` counts completed)."""
    with registry.log_path.open("rb") as log:
        log.seek(since)
        entries = [json.loads(line) for line in log if line.startswith(b"{")]
    return len({e["http.request.id"] for e in entries if "http.request.id" in e})


def failure_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr, and the report from its ``failed:``/``listing failed:`` section on."""
    report = result.stdout.splitlines()
    start = next((n for n, line in enumerate(report) if "failed:" in line), len(report))
    return [*result.stderr.splitlines(), *report[start:]]


def test_wrong_mirror_password_fails_fast_with_one_line(
    world: World, token_issuer: TokenIssuer
) -> None:
    seed_many(world)
    mark = world.mirror.log_mark()
    tokens = len(token_issuer.requests)

    result = world.run("sync", env={"MIRROR_PASSWORD": "not-the-Password-9"})

    assert result.returncode == 1, result.stdout + result.stderr
    lines = failure_lines(result)
    assert len(lines) <= MAX_LINES, "\n".join(lines)
    said = [line for line in lines if "credentials refused" in line]
    assert said, "\n".join(lines)
    host = world.mirror.host
    assert f"{host}: credentials refused for user '{CREDS[0]}' (401 UNAUTHORIZED)" in said[0]
    assert f"check registries.{host}.password ($MIRROR_PASSWORD) in {world.config.name}" in said[0]
    assert f"{TAGS} tags failed: 401 UNAUTHORIZED at {host}" in result.stdout
    assert "will retry" not in result.stderr  # no second round
    assert "stamina" not in result.stderr
    # Not asked once per tag: the first refusal stopped every other request.
    assert len(token_issuer.requests) - tokens <= 5
    assert logged_requests(world.mirror, mark) <= 5
    assert "not-the-Password-9" not in result.stdout + result.stderr


def test_upstream_that_needs_credentials_says_so_in_one_line(
    world: World, basic_registry: LocalRegistry
) -> None:
    image = ImageFactory(world.ns).image("private", layer_size=64)
    with Seeder(basic_registry.url, credentials=CREDS) as seeder:
        for n in range(5):
            seeder.push(f"{world.ns}/private", f"v{n}", image)
    write_config(world, source=f"{basic_registry.host}/{world.ns}")

    result = world.run("sync")

    assert result.returncode == 1, result.stdout + result.stderr
    lines = failure_lines(result)
    assert len(lines) <= MAX_LINES, "\n".join(lines)
    host = basic_registry.host
    said = [line for line in lines if f"{host}: needs credentials" in line]
    assert said, "\n".join(lines)
    assert f"add registries.{host}" in said[0]


def test_copy_names_where_refused_credentials_came_from(
    tmp_path: Path, source_registry: LocalRegistry, basic_registry: LocalRegistry, ns: str
) -> None:
    """An htpasswd mirror: from docker's config.json, then from --dest-creds."""
    image = ImageFactory(ns).image("app", layer_size=64)
    with Seeder(source_registry.url) as seeder:
        seeder.push(f"{ns}/app", "v1", image)
    docker = tmp_path / ".docker"
    docker.mkdir()
    wrong = base64.b64encode(f"{CREDS[0]}:not-the-Password-9".encode()).decode()
    (docker / "config.json").write_text(
        json.dumps({"auths": {basic_registry.host: {"auth": wrong}}})
    )
    source, target = f"{source_registry.host}/{ns}/app:v1", f"{basic_registry.host}/{ns}/app:v1"

    from_docker = mirrorbot("copy", source, target, home=tmp_path)
    from_flag = mirrorbot(
        "copy",
        source,
        target,
        env={"MIRRORBOT_DEST_CREDS": "bot:not-the-Password-9"},
        home=tmp_path,
    )

    host = basic_registry.host
    assert from_docker.returncode == 1, from_docker.stdout + from_docker.stderr
    assert from_docker.stderr.splitlines()[-1] == (
        f"error: {host}: credentials refused for user '{CREDS[0]}' (401 UNAUTHORIZED): "
        f'check auths."{host}" in {docker / "config.json"}'
    )
    assert from_flag.returncode == 1, from_flag.stdout + from_flag.stderr
    assert from_flag.stderr.splitlines()[-1] == (
        f"error: {host}: credentials refused for user 'bot' (401 UNAUTHORIZED): "
        "check --dest-creds / $MIRRORBOT_DEST_CREDS"
    )
    for run in (from_docker, from_flag):
        assert "not-the-Password-9" not in run.stdout + run.stderr
        assert len(run.stderr.splitlines()) <= 2, run.stderr


def test_verify_with_refused_credentials_says_so_once(world: World) -> None:
    image = ImageFactory(world.ns).image("app", layer_size=64)
    with Seeder(world.upstream.url) as seeder:
        for n in range(12):
            seeder.push(f"{world.ns}/app", f"v{n}", image)
    assert world.run("sync").returncode == 0

    result = world.run("verify", env={"MIRROR_PASSWORD": "not-the-Password-9"})

    assert result.returncode == 1, result.stdout + result.stderr
    lines = [*result.stdout.splitlines(), *result.stderr.splitlines()]
    assert len(lines) <= 4, "\n".join(lines)
    host = world.mirror.host
    assert f"12 tags: could not check: {host}: credentials refused for user '{CREDS[0]}'" in (
        result.stdout
    )
