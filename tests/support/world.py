"""An end-to-end test's world: upstream and mirror registries, a config, a bare git remote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mirrorbot.demo.corpus import Image
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from tests.conftest import CREDS

SECRET_ENV = {"MIRROR_USER": CREDS[0], "MIRROR_PASSWORD": CREDS[1]}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@dataclass
class World:
    """One test's upstream namespace, mirror namespace, config and git remote."""

    tmp: Path
    upstream: LocalRegistry
    mirror: LocalRegistry
    ns: str
    remote: Path
    config: Path

    @property
    def mirror_ns(self) -> str:
        return f"{self.ns}-m"

    def environment(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """What ``mirrorbot`` runs with: this world's HOME, the mirror secrets, ``env``.

        The caller's ``XDG_*`` directories are left out: the state clone cache and git's
        config then live under this world's HOME, never in a directory tests share.
        """
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MIRRORBOT_", "GITHUB_", "XDG_"))
        }
        environment.update(
            {"HOME": str(self.tmp / "home"), "DOCKER_CONFIG": str(self.tmp / "home" / ".docker")}
        )
        environment.update(SECRET_ENV)
        environment.update(env or {})
        return environment

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mirrorbot", *args, "--config", str(self.config)]

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            env=self.environment(env),
            timeout=300,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def seed(self, repository: str, tag: str, image: Image) -> None:
        with Seeder(self.upstream.url) as seeder:
            seeder.push(f"{self.ns}/{repository}", tag, image)

    def remote_file(self, path: str) -> str:
        return git("show", f"main:{path}", cwd=self.remote)

    def state(self) -> dict[str, object]:
        loaded: dict[str, object] = json.loads(
            self.remote_file(f"state/{self.upstream.host}/{self.ns}.json")
        )
        return loaded


def write_config(
    world: World, *, source: str | None = None, extra_namespace: str = "", listing: str = "catalog"
) -> None:
    world.config.write_text(
        f"""\
mirror:
  registry: {world.mirror.host}
  namespace: {world.mirror_ns}
state:
  repo: {world.remote}
  path: state
namespaces:
  - source: {source or f"{world.upstream.host}/{world.ns}"}
    list: {listing}
{extra_namespace}registries:
  {world.mirror.host}:
    username: ${{MIRROR_USER}}
    password: ${{MIRROR_PASSWORD}}
"""
    )


def seeded_remote(parent: Path, name: str) -> Path:
    """A bare repository with one commit on main, as GitHub would hold it."""
    remote = parent / name
    git("init", "--bare", "--initial-branch=main", str(remote), cwd=parent)
    seed = parent / f"{name}-seed"
    git("clone", str(remote), str(seed), cwd=parent)
    (seed / "README.md").write_text("metadata repository\n")
    git("add", "README.md", cwd=seed)
    git("commit", "-m", "init", cwd=seed)
    git("push", "origin", "HEAD:main", cwd=seed)
    return remote


def make_world(
    tmp_path: Path, source_registry: LocalRegistry, token_registry: LocalRegistry, ns: str
) -> World:
    remote = seeded_remote(tmp_path, "metadata.git")
    result = World(
        tmp_path, source_registry, token_registry, ns, remote, tmp_path / "mirrorbot.yaml"
    )
    write_config(result)
    return result
