"""Ask GitHub Actions to run the sync workflow for images a registry notified (``repository_dispatch``)."""

from __future__ import annotations

import logging

import httpx

from mirrorbot.engine.registry.client import USER_AGENT
from mirrorbot.jobs.notify import Runner
from mirrorbot.reference import Reference

__all__ = ["github_dispatcher"]

log = logging.getLogger("mirrorbot.notify")


def github_dispatcher(api: str, repository: str, token: str, *, batch: int = 100) -> Runner:
    """A runner that asks GitHub Actions to sync (``repository_dispatch``, type mirror-images)."""
    url = f"{api.rstrip('/')}/repos/{repository}/dispatches"

    async def dispatch(references: tuple[Reference, ...]) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as http:
            for start in range(0, len(references), batch):
                chunk = [str(r) for r in references[start : start + batch]]
                response = await http.post(
                    url,
                    json={"event_type": "mirror-images", "client_payload": {"images": chunk}},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Accept": "application/vnd.github+json",
                        "User-Agent": USER_AGENT,
                    },
                )
                if response.status_code != 204:
                    log.error(
                        "repository_dispatch to %s answered %d", repository, response.status_code
                    )

    return dispatch
