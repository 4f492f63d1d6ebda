"""Client CPU per request, in-process: small uploads and HEADs against one real registry.

    .venv/bin/python bench/request_cpu.py [--blobs 300] [--rounds 5]

A cold sync's client CPU is mostly per request (1,665 requests for 221 MiB at
16 x 7), and on a shared machine the cold sync's own CPU varies by +-15 %
between identical runs. This isolates the per-request part: each round
uploads ``--blobs`` small blobs (POST for the session, PUT with ``digest=`` to
the long ``Location`` URL) and sends a ``HEAD`` for each, eight at a time, and
reports the process CPU per request — no start-up, no git, no blob bytes. Run
it from two code trees (``PYTHONPATH=<tree>``) alternately to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.engine.registry.client import RegistryClient


async def one_round(client: RegistryClient, blobs: int, salt: str) -> tuple[float, int]:
    semaphore = asyncio.Semaphore(8)
    before = client.counter.total

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data

    async def move(index: int) -> None:
        data = f"{salt}-{index}".encode() * 64
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        async with semaphore:
            location = await client.blob_upload_start("bench/requests")
            await client.blob_upload("bench/requests", location, digest, len(data), body(data))
            assert await client.blob_head("bench/requests", digest) == len(data)

    started = time.process_time()
    await asyncio.gather(*(move(index) for index in range(blobs)))
    return time.process_time() - started, client.counter.total - before


async def measure(registry: str, blobs: int, rounds: int) -> list[float]:
    per_request: list[float] = []
    async with RegistryClient(registry) as client:
        await one_round(client, 20, "warm-up")  # imports, connections, auth
        for round_ in range(rounds):
            cpu, requests = await one_round(client, blobs, f"{time.time_ns()}-{round_}")
            per_request.append(cpu / requests * 1e6)
    return per_request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="mirrorbot-reqcpu-") as scratch,
        LocalRegistry(Path(scratch) / "registry", name="requests") as registry,
    ):
        per_request = asyncio.run(measure(registry.host, args.blobs, args.rounds))
    rounded = [round(value, 1) for value in per_request]
    print(
        f"client CPU per request: median {statistics.median(per_request):.1f} us, rounds {rounded}"
    )
    print(f"mirrorbot from {sys.modules['mirrorbot'].__file__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
