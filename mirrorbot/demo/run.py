"""The embedded default: two throwaway registries, a sample namespace, one mirror run."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

from mirrorbot.copier import Copier
from mirrorbot.demo.corpus import sample_namespace
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.reference import parse_reference
from mirrorbot.registry.pool import RegistryPool

__all__ = ["run_demo"]


def run_demo(workdir: Path | None, echo: Callable[[str], None]) -> int:
    with tempfile.TemporaryDirectory(prefix="mirrorbot-demo-") as scratch:
        root = workdir or Path(scratch)
        with (
            LocalRegistry(root / "upstream", name="upstream") as upstream,
            LocalRegistry(root / "mirror", name="mirror") as mirror,
        ):
            corpus = sample_namespace()
            with Seeder(upstream.url) as seeder:
                seeder.push_all(corpus)
            echo(f"upstream registry {upstream.host} seeded with {len(corpus)} repositories")
            echo(f"mirror registry   {mirror.host}")

            async def copy_all() -> None:
                async with RegistryPool() as pool:
                    copier = Copier(pool)
                    for repository, tags in corpus.items():
                        for tag in tags:
                            source = parse_reference(f"{upstream.host}/{repository}:{tag}")
                            target_name = repository.replace("/", "_")
                            target = parse_reference(f"{mirror.host}/demo/{target_name}:{tag}")
                            result = await copier.copy(source, target)
                            echo(f"  {source} → {target} ({result.digest[:19]}…)")

            asyncio.run(copy_all())
    return 0
