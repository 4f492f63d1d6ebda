"""The bench keeps running: ``bench/run.py --quick`` completes and writes every figure.

No timing is asserted here: figures on a shared machine are noise, and the
targets are the bench's business (``bench/README.md``), not the test suite's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCENARIO_FIGURES = (
    "wall_s",
    "cpu_s",
    "exit_code",
    "target_requests",
    "upstream_requests",
    "bytes_uploaded",
    "blob_bytes_uploaded",
    "blobs_uploaded",
    "blobs_mounted",
    "target_storage_growth",
    "upstream_bytes_read",
)
RATIO_FIGURES = ("wall_s", "cpu_s", "target_requests", "upstream_requests", "bytes_uploaded")
# Issue 16: the registries' CPU (from /proc) and the floor it sets, in every measured run.
REGISTRY_FIGURES = ("target_registry_cpu_s", "upstream_registry_cpu_s", "registry_floor_s")
# Per request and per GiB moved: a cold sync and the big copy move data in every corpus size.
CLIENT_CPU_FIGURES = ("cpu_per_request_ms", "cpu_per_gib_s")
FIGURES = (
    "corpus.unique_blob_bytes",
    "corpus.tags",
    *(
        f"{scenario}.{tool}.{name}"
        for scenario in ("cold", "noop", "incremental")
        for tool in ("mirrorbot", "skopeo")
        for name in SCENARIO_FIGURES
    ),
    *(
        f"{scenario}.ratio.{name}"
        for scenario in ("cold", "noop", "incremental")
        for name in RATIO_FIGURES
    ),
    "incremental.change.novel_blobs",
    "incremental.mirrorbot.uploaded_outside_changed_images",
    "incremental.skopeo.uploaded_outside_changed_images",
    *(
        f"big.{tool}.{name}"
        for tool in ("mirrorbot", "skopeo")
        for name in ("wall_s", "peak_rss_mb", "peak_rss_mb_max", "max_rss_mb", "exit_code")
    ),
    *(
        f"{scenario}.{tool}.{name}"
        for scenario in ("cold", "noop", "incremental", "big")
        for tool in ("mirrorbot", "skopeo")
        for name in REGISTRY_FIGURES
    ),
    *(
        f"{scenario}.{tool}.{name}"
        for scenario in ("cold", "big")
        for tool in ("mirrorbot", "skopeo")
        for name in CLIENT_CPU_FIGURES
    ),
    "big.ratio.wall_s",
    "big.ratio.cpu_s",
    "big.ratio.peak_rss",
    "listing.tags",
    "listing.items_planned",
    "listing.plan_wall_s",
    "listing.plan_cpu_s",
    "listing.cpu_share",
    "listing.max_in_flight",
    "listing.max_open_connections",
    "listing.front_requests",
    "listing.listing_cpu_s",
    "listing.planner_cpu_s",
    "listing.render_cpu_s",
    "listing.teardown_cpu_s",
)


@pytest.mark.slow(seconds=35)
def test_quick_bench_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "targets (issue 5):" in completed.stdout
    assert "registry floor (s)" in completed.stdout
    assert "client CPU per request (ms)" in completed.stdout

    document = json.loads(out.read_text())
    assert document["meta"]["quick"] is True
    figures = document["figures"]
    missing = [name for name in FIGURES if name not in figures]
    assert not missing, missing
    for name in FIGURES:
        value = figures[name]
        if ".ratio." in name:
            assert value is None or isinstance(value, int | float), (name, value)
        else:
            assert isinstance(value, int | float), (name, value)
            assert not isinstance(value, bool), (name, value)

    targets = document["targets"]
    assert len(targets) >= 10
    for target in targets:
        assert set(target) >= {"figure", "target", "value", "pass"}
        assert isinstance(target["pass"], bool)
