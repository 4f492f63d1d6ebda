"""The README's first command: the main job on the embedded default, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("MIRRORBOT_", "GITHUB_"))
    }
    environment["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "mirrorbot", "demo"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "tags new (copied)                         7" in out
    assert "committed and pushed" in out
    assert "--- CHANGELOG.md (newest section) ---" in out
    assert out.count("- new: `127.0.0.1:") == 7
    assert "(its namespace page) ---" in out
    assert "### `coredns/coredns`" in out
    assert "second run: 0 changes, 0 requests to the mirror, no commit" in out
