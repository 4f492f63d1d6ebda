"""Read-only commands need no write secrets (issue 13).

``plan`` and ``verify`` read upstream and the mirror: without the registry
variables they read anonymously (one warning line naming the variable);
``find`` reads state files only, offline, from a plain checkout. Writers
(``sync``, ``verify --repair``) still need the variables, but only for the
registries they use, and a config's structure errors always come first.

Real registries (the ``world`` fixture: its token-auth mirror lets anonymous
callers pull) and the real command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mirrorbot.config import credentials_from_config, parse_config
from mirrorbot.config.credentials import Need, resolve_credentials
from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.engine.registry.credentials import Credential
from mirrorbot.errors import ConfigError
from mirrorbot.redact import redact
from tests.support.world import SECRET_ENV, World, git

UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens, a connection is refused


def run_without_secrets(
    world: World, *args: str, config: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``mirrorbot ARGS`` with the registry variables of the world's config unset."""
    environment = {k: v for k, v in world.environment(env).items() if k not in SECRET_ENV}
    command = [sys.executable, "-m", "mirrorbot", *args, "--config", str(config or world.config)]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def synced(world: World) -> None:
    factory = ImageFactory(world.ns)
    world.seed("app", "v1", factory.image("app-1"))
    world.seed("tools/cli", "2.0", factory.image("cli-2"))
    first = world.run("sync")
    assert first.returncode == 0, first.stdout + first.stderr


def warning_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "MIRROR_" in line]


def test_plan_and_verify_read_anonymously_and_writers_still_need_the_variables(
    world: World,
) -> None:
    synced(world)
    mirror = world.mirror.host

    plan = run_without_secrets(world, "plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    (warning,) = warning_lines(plan)  # one line for the registry, naming both variables
    assert "MIRROR_USER is not set" in warning
    assert "MIRROR_PASSWORD is not set" in warning
    assert f"reading {mirror} without the configured credentials" in warning

    verify = run_without_secrets(world, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "verified 2 tags: 0 drifted" in verify.stdout
    assert len(warning_lines(verify)) == 1

    # Writers: exit 2 naming the variable and where it is, before touching a registry.
    mark = world.mirror.log_mark()
    for args in (("sync",), ("verify", "--repair")):
        writer = run_without_secrets(world, *args)
        assert writer.returncode == 2, writer.stdout + writer.stderr
        assert writer.stderr.startswith(f"error: {world.config}:"), writer.stderr
        assert f'registries["{mirror}"].username' in writer.stderr
        assert "environment variable MIRROR_USER is not set" in writer.stderr
    assert world.mirror.requests(mark) == []


def test_find_reads_a_plain_checkout_offline_without_secrets(world: World, tmp_path: Path) -> None:
    synced(world)
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(world.remote), str(checkout), cwd=tmp_path)
    # The repository as a reader has it: origin somewhere this machine cannot reach.
    git("remote", "set-url", "origin", f"{UNREACHABLE}/mirror.git", cwd=checkout)
    config = checkout / "mirrorbot.yaml"
    config.write_text(world.config.read_text().replace(f"repo: {world.remote}", "repo: ."))
    assert "repo: .\n" in config.read_text()
    proxies = {name: UNREACHABLE for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
    marks = world.mirror.log_mark(), world.upstream.log_mark()

    found = run_without_secrets(world, "find", "tools/cli", config=config, env=proxies)
    assert found.returncode == 0, found.stdout + found.stderr
    target = f"{world.mirror.host}/{world.mirror_ns}/tools_cli"
    assert f"{world.upstream.host}/{world.ns}/tools/cli → {target}" in found.stdout
    assert f"docker pull {target}:2.0" in found.stdout
    assert found.stderr == ""
    assert (world.mirror.requests(marks[0]), world.upstream.requests(marks[1])) == ([], [])
    # Read in place: no private worktree was made, nothing was fetched.
    assert not (checkout / ".git" / "mirrorbot").exists()
    assert git("status", "--porcelain", cwd=checkout) == "?? mirrorbot.yaml\n"


def test_publish_records_fragments_without_the_registry_variables(world: World) -> None:
    """Without the registry variables publish still records: it reads the mirror anonymously
    to confirm each record (one warning line says so) and needs no write secret."""
    world.seed("app", "v1", ImageFactory(world.ns).image("app-1"))
    fragments = world.tmp / "fragments"
    copied = world.run("sync", "--shard", "1/1", "--output", str(fragments))
    assert copied.returncode == 0, copied.stdout + copied.stderr
    published = run_without_secrets(world, "publish", str(fragments))
    assert published.returncode == 0, published.stdout + published.stderr
    assert "merged 1 fragments: 1 tags recorded" in published.stdout
    warnings = [line for line in published.stderr.splitlines() if "MIRROR_" in line]
    assert len(warnings) <= 1, published.stderr
    assert all("without the configured credentials" in line for line in warnings)
    assert "v1" in world.state()["images"]["app"]["tags"]  # type: ignore[index]


def test_find_in_this_repository_needs_no_secret(tmp_path: Path) -> None:
    """What the generated index tells a reader to run, with the shipped config."""
    shipped = Path(__file__).resolve().parents[2] / "mirrorbot.yaml"
    assert "${DOCKERHUB_TOKEN}" in shipped.read_text()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "HTTPS_PROXY": UNREACHABLE,
        "HTTP_PROXY": UNREACHABLE,
    }
    result = subprocess.run(
        [sys.executable, "-m", "mirrorbot", "find", "no-such-image-x9", "--config", str(shipped)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environment,
    )
    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    assert result.stdout == "nothing mirrored matches 'no-such-image-x9'\n"


def test_a_registry_entry_the_run_does_not_use_needs_no_variables(world: World) -> None:
    factory = ImageFactory(world.ns)
    world.seed("app", "v1", factory.image("app-1"))
    text = world.config.read_text()
    world.config.write_text(
        text + "  unused.example:\n    username: ${UNUSED_USER}\n    password: ${UNUSED_TOKEN}\n"
    )
    result = world.run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UNUSED" not in result.stdout + result.stderr


def test_rules_need_the_variables_of_their_own_registries_only(world: World) -> None:
    world.seed("app", "v1", ImageFactory(world.ns).image("app-1"))
    rules = world.tmp / "images.yaml"
    target = f"{world.mirror.host}/{world.mirror_ns}/ruled"
    rules.write_text(f"{world.upstream.host}/{world.ns}/app:v1: {target}\n")
    text = world.config.read_text()
    world.config.write_text(text + "  unused.example:\n    identity_token: ${UNUSED_TOKEN}\n")

    planned = run_without_secrets(world, "rules", "--images", str(rules), "--dry-run")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert len(warning_lines(planned)) == 1
    refused = run_without_secrets(world, "rules", "--images", str(rules))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "environment variable MIRROR_USER is not set" in refused.stderr

    copied = world.run("rules", "--images", str(rules))
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert "UNUSED" not in copied.stdout + copied.stderr
    assert world.remote_file("state/CHANGELOG.md").count("- new: ") == 1


def test_plan_without_a_literal_password_variable_quotes_nothing_of_it(world: World) -> None:
    world.seed("app", "v1", ImageFactory(world.ns).image("app-1"))
    text = world.config.read_text().replace("${MIRROR_PASSWORD}", "'S3cure$tailpart9'")
    world.config.write_text(text)
    plan = run_without_secrets(world, "plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "tailpart9" not in plan.stdout + plan.stderr
    assert "S3cure" not in plan.stdout + plan.stderr
    assert f'registries["{world.mirror.host}"].password: a $NAME' in plan.stderr


STRUCTURE = """\
mirror:
  namespace: m
namespaces:
  - source: quay.io/a
    lsit: quay
registries:
  quay.io:
    username: ${UNSET_USER}
    password: ${UNSET_TOKEN}
"""


@pytest.mark.parametrize("command", ["sync", "plan", "verify", "find"])
def test_a_structure_error_is_reported_before_an_unset_variable(
    tmp_path: Path, command: str
) -> None:
    config = tmp_path / "mirrorbot.yaml"
    config.write_text(STRUCTURE)
    args = [command, "x"] if command == "find" else [command]
    result = subprocess.run(
        [sys.executable, "-m", "mirrorbot", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
    )
    assert result.returncode == 2, result.stderr
    assert f"{config}:5: namespaces[0].lsit: unknown key 'lsit'; did you mean 'list'?" in (
        result.stderr
    )
    assert "UNSET" not in result.stderr


# -- the resolver ----------------------------------------------------------------------

CONFIG = """\
mirror:
  registry: mirror.example
  namespace: m
namespaces:
  - source: quay.io/a
registries:
  mirror.example:
    username: ${MIRROR_USER}
    password: ${MIRROR_TOKEN}  # line 9
  other.example:
    username: u
    password: ${OTHER_TOKEN}
"""
TOKEN = "resolved-mirror-token-5e3f"


def test_only_the_hosts_asked_for_are_expanded_and_registered() -> None:
    config = parse_config(CONFIG, filename="m.yaml")
    assert config.registries["mirror.example"].password == "${MIRROR_TOKEN}"
    assert redact(f"x {TOKEN} y") == f"x {TOKEN} y"
    environ = {"MIRROR_USER": "bot", "MIRROR_TOKEN": TOKEN}
    found = credentials_from_config(config, environ, hosts=["mirror.example"])
    assert found == {"mirror.example": Credential("bot", TOKEN)}
    assert redact(f"x {TOKEN} y") == "x *** y"  # registered the moment it was expanded


def test_required_names_the_variable_and_where_it_is_written() -> None:
    config = parse_config(CONFIG, filename="m.yaml")
    with pytest.raises(ConfigError) as caught:
        resolve_credentials(config, {"MIRROR_USER": "bot"}, need=Need.REQUIRED)
    assert str(caught.value) == (
        'm.yaml:9: registries["mirror.example"].password: '
        "environment variable MIRROR_TOKEN is not set"
    )


def test_optional_goes_without_and_says_so_once_per_registry() -> None:
    config = parse_config(CONFIG, filename="m.yaml")
    resolved = resolve_credentials(config, {"MIRROR_USER": "bot"}, need=Need.OPTIONAL)
    assert resolved.credentials == {}
    assert resolved.warnings == (
        'registries["mirror.example"].password: environment variable MIRROR_TOKEN is not set; '
        "reading mirror.example without the configured credentials",
        'registries["other.example"].password: environment variable OTHER_TOKEN is not set; '
        "reading other.example without the configured credentials",
    )


def test_a_stray_dollar_is_a_structure_error_at_load() -> None:
    text = CONFIG.replace("${OTHER_TOKEN}", "'5$'")
    with pytest.raises(ConfigError, match=r"\$\$") as caught:
        parse_config(text, filename="m.yaml")
    assert caught.value.line == 12
    assert caught.value.key == 'registries["other.example"].password'


def test_a_config_is_checked_without_any_environment(tmp_path: Path) -> None:
    config = tmp_path / "mirrorbot.yaml"
    config.write_text(textwrap.dedent(CONFIG))
    result = subprocess.run(
        [sys.executable, "-m", "mirrorbot.config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert (result.returncode, result.stdout) == (0, f"{config}: ok\n"), result.stderr
