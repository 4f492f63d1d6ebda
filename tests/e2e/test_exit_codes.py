"""The exit-code contract, command by command: 2 for usage and config errors (issue 13).

0 ok and 1 partial are exercised by the end-to-end tests; 130 (Ctrl-C) by
tests/e2e/test_reliability.py. Here every command meets a flag or argument it
cannot take, and a config it cannot use, and must exit 2 with one ``error:``
line (click's own usage message for what click parses).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.world import seeded_remote

BROKEN_CONFIG = "mirror:\n  namespace: m\nnamespaces:\n  - source: quay.io/coreos\nmirorr: typo\n"
ISSUE = "### Namespace\n\nquay.io/coreos\n"
RULES = "quay.io/coreos/etcd: 127.0.0.1:9/m/etcd\n"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A valid config (registries never contacted), a broken one, rules, an issue, a fragment dir."""
    remote = seeded_remote(tmp_path, "metadata.git")
    (tmp_path / "good.yaml").write_text(
        "mirror:\n  registry: 127.0.0.1:9\n  namespace: m\n"
        f"state:\n  repo: {remote}\n  path: state\n"
        "namespaces:\n  - source: 127.0.0.1:9/upstream\n"
    )
    (tmp_path / "broken.yaml").write_text(BROKEN_CONFIG)
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "broken-rules.yaml").write_text("- not a mapping\n")
    (tmp_path / "issue.md").write_text(ISSUE)
    (tmp_path / "fragments").mkdir()
    return tmp_path


def run(
    files: Path, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("MIRRORBOT_", "GITHUB_"))
    }
    environment.update(
        {
            "HOME": str(files / "home"),
            "DOCKER_CONFIG": str(files / "home" / ".docker"),
            "MIRRORBOT_NOTIFY_SECRET": "s3cret-for-exit-codes",
            **(env or {}),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "mirrorbot", *(a.replace("{d}", str(files)) for a in args)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=files,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


GOOD = ["--config", "{d}/good.yaml"]
BROKEN = ["--config", "{d}/broken.yaml"]

# (command, arguments, what the one error line must say): every one exits 2.
USAGE_ERRORS = [
    ("sync", ["sync", "--bogus", *GOOD], "No such option"),
    ("sync", ["sync", "--namespace", "example.invalid/nope", *GOOD], "example.invalid/nope"),
    ("sync", ["sync", "--os", "linux", *GOOD], "--os applies to image-syncer rules only"),
    ("sync", ["sync", "--shard", "3/2", *GOOD], "--shard '3/2'"),
    ("plan", ["plan", "--shards", "0", *GOOD], "--shards"),
    ("verify", ["verify", "--no-push", *GOOD], "--no-push goes with --repair"),
    ("find", ["find", *GOOD], "Missing argument"),
    ("copy", ["copy", "not a reference!", "127.0.0.1:9/m/x"], "not a reference!"),
    ("rules", ["rules", *GOOD], "Missing option '--images'"),
    ("rules", ["rules", "--images", "{d}/rules.yaml", "--repair", *GOOD], "No such option"),
    ("notify", ["notify", "--listen", ":99999", *GOOD], "--listen ':99999'"),
    ("request", ["request", *GOOD], "Missing option '--issue-file'"),
    ("publish", ["publish", *GOOD], "Missing argument"),
]

TYPO = "unknown key 'mirorr'; did you mean 'mirror'?"
CONFIG_ERRORS = [
    ("sync", ["sync", *BROKEN], TYPO),
    ("plan", ["plan", *BROKEN], TYPO),
    ("verify", ["verify", *BROKEN], TYPO),
    ("find", ["find", "etcd", *BROKEN], TYPO),
    ("copy", ["copy", "--src-creds", "no-colon", "a/b:1", "127.0.0.1:9/m/x"], "USERNAME:PASSWORD"),
    ("rules", ["rules", "--images", "{d}/broken-rules.yaml", *GOOD], "must map sources"),
    ("rules", ["rules", "--images", "{d}/rules.yaml", *BROKEN], TYPO),
    # No config: state goes to the current directory, which is no git repository (was 1).
    ("rules", ["rules", "--images", "{d}/rules.yaml", "-c", "{d}/absent.yaml"], "git repository"),
    ("notify", ["notify", "--listen", "127.0.0.1:0", *BROKEN], TYPO),
    ("request", ["request", "--issue-file", "{d}/issue.md", "--dry-run", *BROKEN], TYPO),
    ("publish", ["publish", "{d}/fragments", *BROKEN], TYPO),
]


@pytest.mark.parametrize(
    ("command", "args", "said"),
    USAGE_ERRORS,
    ids=[f"{c}:{' '.join(a[1:3])}" for c, a, _ in USAGE_ERRORS],
)
def test_usage_errors_exit_2(files: Path, command: str, args: list[str], said: str) -> None:
    result = run(files, args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("command", "args", "said"),
    CONFIG_ERRORS,
    ids=[f"{c}:{a[-1].rpartition('/')[2]}" for c, a, _ in CONFIG_ERRORS],
)
def test_config_errors_exit_2_in_one_line(
    files: Path, command: str, args: list[str], said: str
) -> None:
    result = run(files, args)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert said in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_the_table_covers_every_command() -> None:
    from mirrorbot.cli import app

    commands = {
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    }
    checked = {c for c, _, _ in USAGE_ERRORS} & {c for c, _, _ in CONFIG_ERRORS}
    assert commands - {"demo"} == checked
