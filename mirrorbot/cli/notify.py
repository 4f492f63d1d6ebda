"""``mirrorbot notify``: mirror on push, from a registry's notifications (starlette + uvicorn)."""

from typing import TYPE_CHECKING, Annotated

import typer

from mirrorbot.cli.exits import EXIT_FAILED, EXIT_USAGE, fail
from mirrorbot.cli.loading import loading
from mirrorbot.cli.options import (
    DEFAULT_CONFIG,
    ConfigOption,
    NoPushOption,
    VerboseOption,
    job_context,
)

if TYPE_CHECKING:
    import socket

    from mirrorbot.jobs.context.runs import SyncOutcome
    from mirrorbot.reference import Reference

__all__ = ["notify"]


def notify(
    config: ConfigOption = DEFAULT_CONFIG,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to serve on.")
    ] = "127.0.0.1:8088",
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            help="The notifying registry as the config names it (default: from each event).",
        ),
    ] = None,
    quiet: Annotated[
        float, typer.Option("--quiet", min=0.0, help="Seconds without events before a batch syncs.")
    ] = 3.0,
    dispatch: Annotated[
        str | None,
        typer.Option(
            "--dispatch", help="OWNER/REPO: send a repository_dispatch instead of syncing here."
        ),
    ] = None,
    github_api: Annotated[
        str, typer.Option("--github-api", help="GitHub API base URL.")
    ] = "https://api.github.com",
    no_push: NoPushOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Mirror on push: receive registry notifications and sync what was pushed.

    The shared secret comes from $MIRRORBOT_NOTIFY_SECRET and must arrive as
    `Authorization: Bearer <secret>` (see the README for the registry side).
    """
    with loading():
        import os

        import uvicorn

        from mirrorbot.integrations.github.dispatch import github_dispatcher
        from mirrorbot.jobs.context.push import PushSync
        from mirrorbot.jobs.notify import NotifyApp, Runner
        from mirrorbot.logs import configure_logging

    redactor = configure_logging(verbose)
    secret = os.environ.get("MIRRORBOT_NOTIFY_SECRET", "")
    if not secret:
        raise fail("set MIRRORBOT_NOTIFY_SECRET to the secret the registry sends", EXIT_USAGE)
    redactor.add([secret])
    host, port = _parse_listen(listen)
    context = job_context(config)
    if dispatch is not None:
        token = os.environ.get("GITHUB_TOKEN", "")
        if not token:
            raise fail("--dispatch needs GITHUB_TOKEN", EXIT_USAGE)
        redactor.add([token])
        runner: Runner = github_dispatcher(github_api, dispatch, token)
    else:

        def synced(references: tuple["Reference", ...], outcome: "SyncOutcome") -> None:
            typer.echo(
                f"synced {len(references)} pushed references: "
                f"{len(outcome.report.changes)} recorded, {len(outcome.report.failures)} failed"
            )

        runner = PushSync(context, push=not no_push, done=synced)

    app_instance = NotifyApp(
        context.config.namespace_plans(), secret, runner, registry=registry, quiet=quiet
    )
    listening = _listening_socket(listen, host, port)
    shown = f"[{host}]" if ":" in host else host or "0.0.0.0"  # noqa: S104 - what we print
    typer.echo(f"listening on http://{shown}:{listening.getsockname()[1]}/events")
    server = uvicorn.Server(
        uvicorn.Config(app_instance.app, log_level="info" if verbose else "warning")
    )
    server.run(sockets=[listening])


def _parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` (every interface) or ``[IPv6]:PORT``."""
    host, sep, port_text = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise fail(f"--listen {listen!r}: expected HOST:PORT with a port 0-65535", EXIT_USAGE)
    return host, int(port_text)


def _listening_socket(listen: str, host: str, port: int) -> "socket.socket":
    """Bind before serving, so a port in use or a bad address is one line, not a traceback."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(128)
    except OSError as exc:
        listening.close()
        raise fail(
            f"--listen {listen}: cannot listen there: {exc.strerror or exc}", EXIT_FAILED
        ) from None
    return listening
