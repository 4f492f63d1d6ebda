"""Figures for ``tests/RELIABILITY.md``, fed by the tests that earn them.

Tests take the ``reliability`` fixture (``tests/conftest.py``) and record what
they did *before* asserting on it, so a failing scenario still leaves its
figures, marked failed. Hostile-input tests elsewhere in the suite are counted
too: any test marked ``@pytest.mark.hostile("category")`` or with ``hostile``
in its name, one input per test case that passed.

The file is written at the end of a session only when every scenario of
``tests/e2e/test_reliability.py`` ran (all its test functions, every
parametrisation): a partial selection would publish partial figures.

Under ``pytest-xdist`` each worker fills its own ledger; at the end each hands
its :meth:`Ledger.records` to the controller, which merges them (:meth:`Ledger.merge`)
and writes the file. Entries are rendered in collection order, never in
the order they were recorded, so which worker ran what changes nothing.
"""

from __future__ import annotations

import inspect
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LEDGER", "Ledger", "Recorder", "hostile_category"]

RELIABILITY_MODULE = "tests.test_reliability"
RELIABILITY_FILE = "tests/e2e/test_reliability.py"

# Where a hostile-input test found by name belongs, by test file.
_CATEGORY_BY_FILE = {
    "test_config.py": "config files",
    "test_sources.py": "upstream listings",
    "test_state_publish.py": "state files",
    "test_client_edge_cases.py": "registry answers (manifests, bodies, headers)",
    "test_media.py": "registry answers (manifests, bodies, headers)",
    "test_errors.py": "registry answers (manifests, bodies, headers)",
    "test_reliability.py": "registry answers (manifests, bodies, headers)",
}


def hostile_category(nodeid: str, marker_args: tuple[Any, ...] | None) -> str | None:
    """The hostile-input category of a test, or None when it is not one."""
    if marker_args:
        return str(marker_args[0])
    path, _, name = nodeid.partition("::")
    if marker_args is None and "hostile" not in name.lower():
        return None
    filename = Path(path).name
    if filename.startswith("test_request"):
        return "issue bodies"
    return _CATEGORY_BY_FILE.get(filename, filename.removeprefix("test_").removesuffix(".py"))


@dataclass
class Ledger:
    faults: list[dict[str, Any]] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)
    leftovers: list[dict[str, Any]] = field(default_factory=list)
    sigterms: list[dict[str, Any]] = field(default_factory=list)
    hostile: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    hostile_tests: dict[str, str] = field(default_factory=dict)  # nodeid -> category
    files_run: set[str] = field(default_factory=set)
    order: list[str] = field(default_factory=list)  # node ids in collection order
    expected: dict[str, int] | None = None  # reliability test function -> cases, if known
    workers_lost: int = 0  # xdist workers that went down without handing in their records

    # -- across xdist workers ------------------------------------------------

    def records(self) -> dict[str, Any]:
        """What a worker hands to the controller (JSON-able)."""
        return {
            **{kind: getattr(self, kind) for kind in _RECORD_KINDS},
            "hostile_tests": self.hostile_tests,
            "order": self.order,
            "expected": self.expected_cases(),
        }

    def merge(self, records: Mapping[str, Any]) -> None:
        """Add one worker's records (the controller's own outcomes come from its hooks)."""
        for kind in _RECORD_KINDS:
            getattr(self, kind).extend(records[kind])
        self.hostile_tests.update(records["hostile_tests"])
        if not self.order:
            self.order = list(records["order"])
        if records["expected"] is not None:
            self.expected = dict(records["expected"])

    def _in_collection_order(self) -> None:
        """Entries sorted by their test's place in the collection; a test's own stay in order."""
        place = {nodeid: index for index, nodeid in enumerate(self.order)}
        for kind in _RECORD_KINDS:
            entries: list[dict[str, Any]] = getattr(self, kind)
            entries.sort(key=lambda entry: place.get(entry["nodeid"], len(place)))

    # -- fed by the hooks -------------------------------------------------

    def outcome(self, nodeid: str, when: str, outcome: str) -> None:
        self.files_run.add(nodeid.partition("::")[0])
        previous = self.outcomes.get(nodeid)
        if outcome == "failed" or previous is None or (when == "call" and previous != "failed"):
            self.outcomes[nodeid] = outcome

    def passed(self, nodeid: str) -> bool:
        return self.outcomes.get(nodeid) == "passed"

    # -- completeness -------------------------------------------------------

    def expected_cases(self) -> dict[str, int] | None:
        """Test function -> cases of the reliability module: as handed in, else from the module."""
        module = sys.modules.get(RELIABILITY_MODULE)
        if self.expected is not None or module is None:
            return self.expected
        return {
            name: _cases(function)
            for name, function in inspect.getmembers(module, inspect.isfunction)
            if name.startswith("test_")
        }

    def reliability_complete(self) -> bool:
        """Every test function of the reliability module ran, every parametrisation."""
        expected = self.expected_cases()
        if expected is None:
            return False
        ran: Counter[str] = Counter()
        for nodeid, outcome in self.outcomes.items():
            path, _, name = nodeid.partition("::")
            if path == RELIABILITY_FILE and outcome in ("passed", "failed", "skipped"):
                ran[name.split("[", 1)[0]] += 1
        return all(ran[name] >= cases for name, cases in expected.items())

    # -- rendering ------------------------------------------------------------

    def _status(self, nodeid: str) -> str:
        return {"passed": "passed", "failed": "**FAILED**", "skipped": "skipped"}.get(
            self.outcomes.get(nodeid, ""), "did not finish"
        )

    def render(self) -> str:
        self._in_collection_order()
        reliability = {
            nodeid: outcome
            for nodeid, outcome in self.outcomes.items()
            if nodeid.startswith(RELIABILITY_FILE + "::")
        }
        failed = sorted(n for n, o in reliability.items() if o != "passed")
        lines = [
            "# Reliability figures",
            "",
            "_Generated by the test suite; do not edit._ "
            "A whole run of the suite (the README's test command, on xdist workers or not) "
            "regenerates it; "
            "`tests/support/reliability.py` renders it. Only "
            "what every passing run shares is written (no timings or counts that vary with "
            "request order), so the file changes only when the scenarios or their outcomes do.",
            "",
            f"Scenarios in `{RELIABILITY_FILE}`: {len(reliability)} run, "
            f"{len(reliability) - len(failed)} passed"
            + (
                ", failed: " + ", ".join(f"`{n.partition('::')[2]}`" for n in failed)
                if failed
                else ""
            )
            + ".",
            "",
        ]
        lines += self._render_faults()
        lines += self._render_kills()
        lines += self._render_sigterm()
        lines += self._render_hostile()
        lines += self._render_secrets()
        return "\n".join(lines).rstrip("\n") + "\n"

    def _render_faults(self) -> list[str]:
        lines = [
            "## Faults survived",
            "",
            "Injected by `FaultProxy` (`tests/support/faults.py`) between mirrorbot and real "
            "registries; seeded, loopback only. A scenario survives when its invariants hold "
            "(see the test); `exit` is what `mirrorbot sync` returned under faults.",
            "",
            "| scenario | fault rate | fault kinds injected | exit | result |",
            "|---|---:|---|---:|---|",
        ]
        for entry in self.faults:
            kinds: Counter[str] = Counter()
            for counts in entry["injected"].values():
                kinds.update(counts)
            injected = ", ".join(sorted(kind for kind, count in kinds.items() if count))
            where = " + ".join(entry["injected"])
            scope = f" of {entry['scope']}" if entry["scope"] else ""
            lines.append(
                f"| {entry['scenario']} | {entry['rate']:.0%}{scope} ({where}) | "
                f"{injected or 'none'} | {entry['exit']} | {self._status(entry['nodeid'])} |"
            )
        survived = sorted(
            {
                e["rate"]
                for e in self.faults
                if self.passed(e["nodeid"]) and e["rate"] > 0 and not e["scope"]
            }
        )
        lines += [
            "",
            "Fault rates survived (on every request): "
            + (", ".join(f"{rate:.0%}" for rate in survived) if survived else "none")
            + ".",
            "",
        ]
        return lines

    def _render_kills(self) -> list[str]:
        lines = ["## Crashes (SIGKILL)", ""]
        for entry in self.kills:
            lines.append(
                f"- {entry['runs']} runs killed with SIGKILL after a seeded random delay "
                "(between a measured start-up and the longest run seen: before, while and "
                "after copying and publishing), each followed by a clean run: "
                f"**{entry['survived']} survived** (state == mirror, CHANGELOG without "
                f"duplicated or lost entries) — {self._status(entry['nodeid'])}."
            )
        for entry in self.leftovers:
            blocking = len(entry["blocking"])
            lines.append(
                f"- Lock files a kill inside git leaves in the state clone "
                f"({', '.join(f'`{name}`' for name in entry['tried'])}), each followed by a run: "
                f"{len(entry['tried']) - blocking} of {len(entry['tried'])} runs completed"
                + (f", {blocking} blocked" if blocking else "")
                + f" — {self._status(entry['nodeid'])}."
            )
        return [*lines, ""]

    def _render_sigterm(self) -> list[str]:
        lines = ["## Cancellation (SIGTERM, SIGINT)", ""]
        for entry in self.sigterms:
            lines.append(
                f"- {entry['signal']} once some of {entry['total']} tags were in the mirror: exited with "
                f"{entry['exit']} within the grace of {entry['grace']:.0f} s; every tag reported "
                "completed was recorded and pushed, and is in the mirror with its digest; the "
                f"next run completed the rest — {self._status(entry['nodeid'])}."
            )
        return [*lines, ""]

    def _render_hostile(self) -> list[str]:
        by_category: Counter[str] = Counter()
        tests: dict[str, set[str]] = {}
        for nodeid, category in self.hostile_tests.items():
            if self.passed(nodeid):
                by_category[category] += 1
                tests.setdefault(category, set()).add(nodeid.split("[", 1)[0])
        for entry in self.hostile:
            if self.passed(entry["nodeid"]):
                by_category[entry["category"]] += entry["count"]
                tests.setdefault(entry["category"], set()).add(entry["nodeid"].split("[", 1)[0])
        lines = [
            "## Hostile inputs tried",
            "",
            "Counted from the tests that passed in a whole-suite run: tests marked "
            '`@pytest.mark.hostile("category")` or named `*hostile*` (one input per test '
            "case), plus inputs recorded through the `reliability` fixture.",
            "",
            "| category | inputs | tests |",
            "|---|---:|---:|",
        ]
        for category in sorted(by_category):
            lines.append(f"| {category} | {by_category[category]} | {len(tests[category])} |")
        lines.append(f"| **total** | {sum(by_category.values())} | |")
        return [*lines, ""]

    def _render_secrets(self) -> list[str]:
        lines = ["## Secrets", ""]
        for entry in self.secrets:
            lines.append(
                f"- {entry['secrets']} known secrets (passwords, tokens and their encodings) "
                "searched in every output of a full `--verbose` run "
                f"({entry['what']}): **secrets leaked = {len(entry['leaked'])}** — "
                f"{self._status(entry['nodeid'])}."
            )
        return [*lines, ""]

    def whole_suite_ran(self, tests_dir: Path) -> bool:
        """Every test file ran: the hostile-input counts are the suite's, not a subset's."""
        files = {
            f"tests/{p.relative_to(tests_dir).as_posix()}" for p in tests_dir.rglob("test_*.py")
        }
        return files <= self.files_run

    def write_if_complete(self, path: Path) -> bool:
        if self.workers_lost or not (
            self.reliability_complete() and self.whole_suite_ran(path.parent)
        ):
            return False
        text = self.render()
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return True


_RECORD_KINDS = ("faults", "kills", "leftovers", "sigterms", "hostile", "secrets")


def _cases(function: Any) -> int:
    count = 1
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "parametrize" and len(mark.args) >= 2:
            count *= max(1, len(mark.args[1]))
    return count


LEDGER = Ledger()


@dataclass
class Recorder:
    """What one test records; bound to its node id."""

    ledger: Ledger
    nodeid: str

    def faults(
        self,
        scenario: str,
        *,
        rate: float,
        injected: Mapping[str, Mapping[str, int]],
        proxied: int,
        exit_code: int,
        scope: str = "",
    ) -> None:
        """``scope``: the requests the rate applies to, when not every request."""
        self.ledger.faults.append(
            {
                "nodeid": self.nodeid,
                "scenario": scenario,
                "scope": scope,
                "rate": rate,
                "injected": {side: dict(counts) for side, counts in injected.items()},
                "proxied": proxied,
                "exit": exit_code,
            }
        )

    def kills(self, **figures: Any) -> dict[str, Any]:
        """A live record: the test updates it as cycles complete."""
        entry = {"nodeid": self.nodeid, **figures}
        self.ledger.kills.append(entry)
        return entry

    def leftovers(self, *, tried: list[str], blocking: list[str]) -> None:
        self.ledger.leftovers.append({"nodeid": self.nodeid, "tried": tried, "blocking": blocking})

    def sigterm(self, **figures: Any) -> None:
        self.ledger.sigterms.append({"nodeid": self.nodeid, **figures})

    def hostile(self, category: str, count: int = 1) -> None:
        self.ledger.hostile.append({"nodeid": self.nodeid, "category": category, "count": count})

    def secrets(self, *, secrets: int, places: int, leaked: list[str], what: str) -> None:
        self.ledger.secrets.append(
            {
                "nodeid": self.nodeid,
                "secrets": secrets,
                "places": places,
                "leaked": leaked,
                "what": what,
            }
        )
