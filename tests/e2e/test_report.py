"""The run report: what a plan shows, and failures grouped by cause (issue 13)."""

from __future__ import annotations

from pathlib import Path

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.engine.registry.retry import failure_cause
from mirrorbot.errors import Diagnostic, RegistryError
from mirrorbot.jobs.outcome import Failure, SyncReport
from mirrorbot.jobs.report import render_markdown, render_plain, summarise
from tests.support.world import World


def refused(host: str, repository: str, status: int = 401) -> RegistryError:
    return RegistryError(
        status=status,
        method="HEAD",
        url=f"https://{host}/v2/{repository}/manifests/v1",
        reference=f"{host}/{repository}:v1",
        diagnostics=(Diagnostic("UNAUTHORIZED", "authentication required"),),
    )


def test_failures_group_by_code_and_registry_not_by_message() -> None:
    report = SyncReport()
    for n in range(47):
        error = refused("mirror.example:5000", f"ns/app{n}")
        report.failures.append(
            Failure(f"up.example/ns/app{n}:v1", "t", str(error), failure_cause(error))
        )
    other = refused("other.example", "ns/x", status=403)
    report.failures.append(Failure("up.example/ns/x:v1", "t", str(other), failure_cause(other)))

    text = render_plain(summarise(report))

    failed = text.split("failed:\n", 1)[1].splitlines()
    assert len(failed) == 2, text
    assert failed[0].startswith(
        "  - 47 tags failed: 401 UNAUTHORIZED at mirror.example:5000 "
        "(up.example/ns/app0:v1, up.example/ns/app1:v1, up.example/ns/app2:v1 and 44 more); "
        "first: mirror.example:5000/ns/app0:v1: HEAD https://mirror.example:5000/v2/ns/app0/"
    ), failed[0]
    assert failed[1].startswith("  - up.example/ns/x:v1: other.example/ns/x:v1: HEAD"), failed[1]
    assert render_markdown(summarise(report)).count("47 tags failed") == 1


def test_plan_reports_a_plan_not_a_dry_sync(world: World, tmp_path: Path) -> None:
    f = ImageFactory(world.ns)
    world.seed("app", "v1", f.image("app", layer_size=64))
    world.seed("app", "v2", f.image("app2", layer_size=64))
    mark = world.upstream.log_mark()
    summary = tmp_path / "summary.md"

    result = world.run("plan", env={"GITHUB_STEP_SUMMARY": str(summary)})

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "mirrorbot plan"
    rows = {line.split("  ")[1].strip(): line.split("  ", 2)[-1].strip() for line in lines[1:8]}
    assert rows == {
        "namespaces": "1",
        "tags to copy (new)": "2",
        "tags to copy (updated)": "0",
        "tags unchanged": "0",
        "tags gone upstream (kept)": "0",
        "images with tags to copy": "1",
        "bytes to copy": "not estimated (plan fetches no manifests)",
    }, lines
    for wrong in ("dry run", "bytes uploaded", "blobs uploaded", "mirrorbot sync", "(copied)"):
        assert wrong not in result.stdout
    assert summary.read_text().startswith("## mirrorbot plan\n")
    # No manifest is fetched to plan: Docker Hub counts each manifest GET as a pull.
    fetched = [r for r in world.upstream.requests(mark) if r.method == "GET"]
    assert not [r for r in fetched if "/manifests/" in r.uri], fetched
