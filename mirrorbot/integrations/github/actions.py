"""What a command leaves for GitHub Actions: step outputs and the job's step summary.

Both are files named by the runner (``$GITHUB_OUTPUT``, ``$GITHUB_STEP_SUMMARY``)
and appended to; outside Actions (variable unset) nothing is written. Output
values are reduced to a safe alphabet so that no value can start a second
``key=value`` line or a heredoc, and everything written is redacted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from mirrorbot.jobs.report import Summary, render_markdown
from mirrorbot.logs import redact

__all__ = ["MAX_OUTPUT_CHARS", "output_lines", "write_outputs", "write_step_summary"]

MAX_OUTPUT_CHARS: Final = 255
_UNSAFE = re.compile(r"[^A-Za-z0-9._:/-]")


def output_lines(values: Mapping[str, str | bool]) -> str:
    """``key=value`` lines for ``$GITHUB_OUTPUT``; values cannot carry newlines or oddities.

    Booleans become ``true``/``false``; text keeps only ``[A-Za-z0-9._:/-]``, at
    most :data:`MAX_OUTPUT_CHARS` of it.
    """
    shown = {
        key: ("true" if value else "false")
        if isinstance(value, bool)
        else _UNSAFE.sub("", value)[:MAX_OUTPUT_CHARS]
        for key, value in values.items()
    }
    return "".join(f"{key}={value}\n" for key, value in shown.items())


def _append(variable: str, text: str, environ: Mapping[str, str] | None) -> Path | None:
    env = os.environ if environ is None else environ
    target = env.get(variable)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(redact(text))
    return path


def write_outputs(
    values: Mapping[str, str | bool], environ: Mapping[str, str] | None = None
) -> Path | None:
    """Append ``values`` as step outputs to ``$GITHUB_OUTPUT`` in Actions."""
    return _append("GITHUB_OUTPUT", output_lines(values), environ)


def write_step_summary(summary: Summary, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append the Markdown report (redacted) to ``$GITHUB_STEP_SUMMARY`` in Actions."""
    return _append("GITHUB_STEP_SUMMARY", render_markdown(summary), environ)
