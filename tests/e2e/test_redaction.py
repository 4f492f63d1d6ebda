"""Nothing secret is printed (issue 11, item 7).

Unit tests pin the redactor's forms and patterns and the ``$`` rule of config
expansion. The end-to-end tests run the real ``mirrorbot`` command line
against real Distribution registries behind :class:`EchoFront`, whose error
pages quote the request's ``Authorization`` header back, then search every
output (stdout, stderr, ``$GITHUB_STEP_SUMMARY``, state clone, remote, ``git
log -p``) for the password, its Basic form and everything the front echoed.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from mirrorbot.config import credentials_from_config, parse_config
from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.engine.registry.credentials import Credential
from mirrorbot.errors import ConfigError
from mirrorbot.integrations.github.actions import write_step_summary
from mirrorbot.jobs.report import Summary, render_markdown, render_plain
from mirrorbot.logs import secret_filter
from mirrorbot.redact import (
    MIN_SECRET,
    REDACTED,
    RedactingStream,
    Redactor,
    redact_data,
    secret_forms,
)
from tests.conftest import CREDS, PASSWORD, USER
from tests.support.echo import ECHO_STYLES, FOREIGN_JWT, FOREIGN_TOKEN, EchoFront
from tests.support.world import World, git, make_world

SECRET = "Hunter2-$ecret/with+odd=chars&more"
BASIC = base64.b64encode(f"alice:{SECRET}".encode()).decode()
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")


def redactor(*secrets: str) -> Redactor:
    """A private redactor: the process-wide one must not learn test values."""
    instance = Redactor()
    instance.add(secrets)
    return instance


# -- the redactor ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        quote(SECRET, safe=""),
        json.dumps(SECRET)[1:-1],
    ],
    ids=["raw", "base64", "urlsafe-unpadded", "urlencoded", "json"],
)
def test_every_form_of_a_registered_secret_is_masked(form: str) -> None:
    text = f"registry said: <{form}> (end)"
    assert redactor(SECRET).redact(text) == f"registry said: <{REDACTED}> (end)"


def test_the_basic_form_of_a_credential_is_masked() -> None:
    instance = redactor(*Credential("alice", SECRET).secrets())
    assert BASIC not in instance.redact(f"auth entry {BASIC} refused")
    assert instance.redact(f"auth entry {BASIC} refused") == f"auth entry {REDACTED} refused"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Authorization: Basic Zm9vOmJhcg==\r\nHost: x",
            f"Authorization: Basic {REDACTED}\r\nHost: x",
        ),
        ("authorization=Bearer abc.def", f"authorization=Bearer {REDACTED}"),
        (
            "map[Accept:[*/*] Authorization:[Bearer opaque-token-value-1234] User-Agent:[x]]",
            f"map[Accept:[*/*] Authorization:[Bearer {REDACTED}] User-Agent:[x]]",
        ),
        (
            '{"Authorization": ["Basic Zm9vOmJhcg=="]}',
            f'{{"Authorization": ["Basic {REDACTED}"]}}',
        ),
        ("Proxy-Authorization: token s3cr3t", f"Proxy-Authorization: token {REDACTED}"),
        ("refused Basic Zm9vOmJhcg== here", f"refused Basic {REDACTED} here"),
        ("refused bearer 0123456789abcdefXYZ!", f"refused bearer {REDACTED}!"),
        (f"upstream said {FOREIGN_JWT}.", f"upstream said {REDACTED}."),
        ("/retry?token=abcdef123&x=1", f"/retry?token={REDACTED}&x=1"),
        ('{"access_token": "zzz-yyy", "a": 1}', f'{{"access_token": "{REDACTED}", "a": 1}}'),
        ("password=hunter22 ok", f"password={REDACTED} ok"),
    ],
)
def test_credentials_nobody_registered_are_masked_by_their_shape(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry"',
        'Basic realm="registry"',
        "basic authentication required; bearer token expired",
        "fetching token: connection refused; authorization failed",
        "docker.io/library/nginx:1.25 sha256:" + "ab" * 32,
        "a tag named token and a password of 3 characters",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor().redact(text) == text


def test_short_secrets_are_not_masked_on_their_own() -> None:
    # A 3-character password would turn every "abc" into ***; its Basic form is still masked.
    short = "abc"
    assert len(short) < MIN_SECRET
    assert secret_forms(short) == set()
    instance = redactor(short, *Credential("alice", short).secrets())
    basic = base64.b64encode(b"alice:abc").decode()
    assert instance.redact(f"abcdef {basic}") == f"abcdef {REDACTED}"
    assert secret_forms("abcd")  # the documented minimum is masked


def test_the_longest_form_wins() -> None:
    # "secret-long" must not leave "-long" behind after "secret" matched first.
    instance = redactor("secret", "secret-long")
    assert instance.redact("x secret-long y") == f"x {REDACTED} y"


def test_json_documents_stay_valid() -> None:
    document = {"error": f'"Authorization": "Basic {BASIC}"', "list": [SECRET, 1, None]}
    cleaned = json.loads(json.dumps(redact_data(document)))
    assert BASIC not in json.dumps(cleaned)
    assert cleaned["list"][1:] == [1, None]


def test_a_guarded_stream_redacts_every_write_and_offers_no_bytes() -> None:
    inner = io.StringIO()
    stream = RedactingStream(inner)
    stream.write(f"Authorization: Basic {BASIC}\n")
    stream.flush()
    assert inner.getvalue() == f"Authorization: Basic {REDACTED}\n"
    assert not hasattr(stream, "buffer")  # no way around it with bytes


def test_log_records_and_their_tracebacks_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(secret_filter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("echoed %s", "Authorization: Bearer 0123456789abcdefXYZ")
        try:
            raise ValueError(f"page quoted Basic {BASIC}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "0123456789abcdefXYZ" not in text
    assert BASIC not in text
    assert f"Basic {REDACTED}" in text  # the traceback's message, masked
    assert "ValueError" in text


def test_every_rendering_of_the_run_report_is_redacted(tmp_path: Path) -> None:
    echoed = f"GET /v2/a/manifests/1 returned 400 (<pre>Authorization: Basic {BASIC}</pre>)"
    summary = Summary(
        namespaces=1,
        images_changed=0,
        tags_new=0,
        tags_updated=0,
        tags_unchanged=0,
        tags_gone=0,
        tags_failed=1,
        already_present=0,
        bytes_uploaded=0,
        blobs_uploaded=0,
        blobs_mounted=0,
        blobs_skipped=0,
        duration=1.0,
        dry_run=False,
        failures=(("quay.io/a/b:1", echoed),),
        listing_errors=(f"quay.io/c: {FOREIGN_JWT}",),
        warnings=(f"token={FOREIGN_TOKEN}",),
        planned=(),
    )
    target = tmp_path / "summary.md"
    write_step_summary(summary, {"GITHUB_STEP_SUMMARY": str(target)})
    for text in (render_plain(summary), render_markdown(summary), target.read_text()):
        for secret in (BASIC, FOREIGN_JWT, FOREIGN_TOKEN):
            assert secret not in text
        assert f"Authorization: Basic {REDACTED}" in text


# -- $ in registries: -----------------------------------------------------------------

CONFIG = """\
mirror:
  namespace: m
namespaces:
  - source: quay.io/a
registries:
  quay.io:
    username: u
    password: {password}
"""


def test_double_dollar_is_a_literal_dollar() -> None:
    config = parse_config(CONFIG.format(password="'pa$$word$${X}'"))
    assert credentials_from_config(config, {"X": "no"})["quay.io"].password == "pa$word${X}"


@pytest.mark.parametrize(
    "password", ["pa$tailpart9", "'pa$tailpart9-more'", "'${OK}x$tailpart9'", "tailpart9$"]
)
def test_a_literal_dollar_is_an_error_that_quotes_nothing_of_the_value(password: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG.format(password=password), environ={"OK": "fine-secret"})
    message = str(info.value)
    assert "tailpart9" not in message
    assert "fine-secret" not in message
    assert "$$" in message  # how to write a literal $
    assert "password" in message  # where


def test_an_unset_braced_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="environment variable QUAY_TOKEN is not set"):
        parse_config(CONFIG.format(password="${QUAY_TOKEN}"), environ={})


def test_the_cli_names_no_tail_of_a_literal_password(tmp_path: Path) -> None:
    config = tmp_path / "mirrorbot.yaml"
    config.write_text(CONFIG.format(password="'S3cure$tailpart9'"))
    git("init", "--quiet", str(tmp_path), cwd=tmp_path)  # state.repo "." (no origin)
    # sync writes, so it needs quay.io's credentials (plan would read anonymously:
    # tests/e2e/test_readonly_commands.py).
    result = subprocess.run(
        [sys.executable, "-m", "mirrorbot", "sync", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2, result.stderr
    assert "tailpart9" not in result.stdout + result.stderr
    assert "S3cure" not in result.stdout + result.stderr
    assert "registries" in result.stderr


# -- end to end: a registry that echoes our credentials ---------------------------------


def _configure(world: World, upstream: str, images: list[str]) -> None:
    world.config.write_text(
        f"""\
mirror:
  registry: {world.mirror.host}
  namespace: {world.mirror_ns}
state:
  repo: {world.remote}
  path: state
namespaces:
  - source: {upstream}/{world.ns}
    list: images
    images: {json.dumps(images)}
registries:
  {world.mirror.host}:
    username: ${{MIRROR_USER}}
    password: ${{MIRROR_PASSWORD}}
  {upstream}:
    username: ${{UPSTREAM_USER}}
    password: ${{UPSTREAM_PASSWORD}}
"""
    )


def _copy(world: World, source: str, target: str) -> subprocess.CompletedProcess[str]:
    creds = f"{USER}:{PASSWORD}"
    return subprocess.run(
        [sys.executable, "-m", "mirrorbot", "copy", source, target, "--verbose"],
        capture_output=True,
        text=True,
        env=world.environment({"MIRRORBOT_SRC_CREDS": creds, "MIRRORBOT_DEST_CREDS": creds}),
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_credentials_a_registry_echoes_are_printed_nowhere(
    tmp_path: Path, basic_registry: LocalRegistry, token_registry: LocalRegistry, ns: str
) -> None:
    world = make_world(tmp_path, basic_registry, token_registry, ns)
    factory = ImageFactory(ns)
    echo_images = [f"echo-{style}" for style in ECHO_STYLES]
    with Seeder(basic_registry.url, CREDS) as seeder:
        for name in ["app", *echo_images]:
            seeder.push(f"{ns}/{name}", "v1", factory.image(name))
    summary = tmp_path / "step-summary.md"
    env = {
        "GITHUB_STEP_SUMMARY": str(summary),
        "UPSTREAM_USER": USER,
        "UPSTREAM_PASSWORD": PASSWORD,
    }
    with EchoFront(basic_registry) as upstream, EchoFront(token_registry) as mirror:
        fronted = upstream.host
        _configure(world, fronted, ["app", *echo_images])
        runs = {"sync": world.run("sync", "--verbose", env=env)}
        for style in ECHO_STYLES:
            runs[f"copy from echo-{style}"] = _copy(
                world, f"{upstream.host}/{ns}/echo-{style}:v1", f"{mirror.host}/{ns}-m/c:v1"
            )
        # The mirror side echoes the Bearer token mirrorbot fetched from the token realm.
        runs["copy to echo-map"] = _copy(
            world, f"{upstream.host}/{ns}/app:v1", f"{mirror.host}/{ns}-m/echo-map:v1"
        )
    # The attack really happened: both fronts quoted credentials back.
    assert any(value.startswith("Basic ") for value in upstream.echoed)
    assert any(value.startswith("Bearer ") for value in mirror.echoed)
    places: dict[str, str] = {}
    for name, run in runs.items():
        places[f"{name}: stdout"] = run.stdout
        places[f"{name}: stderr"] = run.stderr
    places["$GITHUB_STEP_SUMMARY"] = summary.read_text()
    for root in (tmp_path / "home", world.remote):
        for path in root.rglob("*"):
            if path.is_file():
                places[str(path.relative_to(tmp_path))] = path.read_bytes().decode("latin-1")
    places["git log -p --all (remote)"] = git("log", "-p", "--all", cwd=world.remote)
    secrets = {
        "password": PASSWORD,
        "basic user:password": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "foreign JWT": FOREIGN_JWT,
        "foreign token": FOREIGN_TOKEN,
    }
    for value in {*upstream.echoed, *mirror.echoed}:
        secrets[f"echoed {value[:12]}…"] = value.partition(" ")[2]
    leaked = [
        f"{label} in {place}"
        for place, text in places.items()
        for label, secret in secrets.items()
        if secret in text
    ]
    leaked += [f"a JWT in {place}" for place, text in places.items() if _JWT.search(text)]
    assert leaked == []
    assert len(places) > 15  # the clone and the remote were really searched

    sync = runs["sync"]
    assert sync.returncode == 1, sync.stdout + sync.stderr
    for name in echo_images:
        assert f"{ns}/{name}:v1" in sync.stdout
    assert f"Authorization: Basic {REDACTED}" in summary.read_text()  # the page, redacted
    state = json.loads(world.remote_file(f"state/{fronted}/{ns}.json"))
    assert set(state["images"]) == {"app"}  # the healthy image is recorded and pushed
    for name, run in runs.items():
        if name != "sync":
            assert run.returncode == 1, f"{name}: {run.stdout}{run.stderr}"
            assert run.stderr.startswith("error: ") or "\nerror: " in run.stderr, run.stderr
