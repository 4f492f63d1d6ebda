"""``tests/RELIABILITY.md`` is the same whether one session or several xdist workers ran the suite."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.reliability import Ledger, Recorder

FILE = "tests/e2e/test_reliability.py"
ORDER = [
    f"{FILE}::test_faults",
    f"{FILE}::test_signals[SIGTERM]",
    f"{FILE}::test_signals[SIGINT]",
    f"{FILE}::test_kills",
    "tests/test_other.py::test_hostile_names",
]
EXPECTED = {"test_faults": 1, "test_signals": 2, "test_kills": 1}


def _run(ledger: Ledger, nodeid: str) -> None:
    """What the test ``nodeid`` records, then its reports."""
    recorder = Recorder(ledger, nodeid)
    name = nodeid.partition("::")[2]
    if name == "test_faults":
        for rate in (0.1, 0.3):  # two entries from one test: their order must hold
            injected = {"upstream": {"500": 2, "cut": 1}, "mirror": {"stall": 1}}
            recorder.faults(
                f"sync at {rate:.0%}", rate=rate, injected=injected, proxied=9, exit_code=0
            )
        recorder.hostile("registry answers", 3)
    elif name.startswith("test_signals"):
        recorder.sigterm(signal=name[13:-1], total=20, exit=1, grace=15.0)
    elif name == "test_kills":
        live = recorder.kills(runs=0, survived=0)
        live.update(runs=20, survived=20)  # a live record, updated as cycles complete
        recorder.leftovers(tried=[".git/index.lock"], blocking=[])
        recorder.secrets(secrets=5, places=30, leaked=[], what="everything")
    for when in ("setup", "call", "teardown"):
        ledger.outcome(
            nodeid, when, "failed" if name == "test_kills" and when == "call" else "passed"
        )


def _one_session() -> Ledger:
    ledger = Ledger(order=list(ORDER), expected=dict(EXPECTED))
    ledger.hostile_tests[ORDER[-1]] = "upstream listings"
    for nodeid in ORDER:
        _run(ledger, nodeid)
    return ledger


def _two_workers(shares: list[list[str]]) -> Ledger:
    """A controller fed as xdist feeds it: reports as they come, records when a worker is done."""
    controller = Ledger()
    workers = [Ledger(order=list(ORDER), expected=dict(EXPECTED)) for _ in shares]
    for worker in workers:
        worker.hostile_tests[ORDER[-1]] = "upstream listings"  # every worker collects everything
    for worker, share in zip(workers, shares, strict=True):
        for nodeid in share:
            _run(worker, nodeid)
    for nodeid in [n for share in reversed(shares) for n in share]:
        for when in ("setup", "call", "teardown"):
            failed = nodeid.endswith("test_kills") and when == "call"
            controller.outcome(nodeid, when, "failed" if failed else "passed")
    for worker in reversed(workers):
        controller.merge(json.loads(json.dumps(worker.records())))  # through the wire
    return controller


def test_workers_ledgers_render_as_one_session_would() -> None:
    expected = _one_session().render()
    assert "| sync at 30% |" in expected  # the render has content
    assert "**FAILED**" in expected
    for shares in (
        [[ORDER[3], ORDER[0]], [ORDER[2], ORDER[4], ORDER[1]]],
        [[ORDER[4]], [ORDER[1], ORDER[3], ORDER[2], ORDER[0]]],
    ):
        assert _two_workers(shares).render() == expected


def test_the_file_is_written_only_when_no_worker_was_lost(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "e2e").mkdir(parents=True)
    for name in ("e2e/test_reliability.py", "test_other.py"):
        (tests / name).touch()
    shares = [[ORDER[0], ORDER[1]], [ORDER[2], ORDER[3], ORDER[4]]]

    assert _two_workers(shares).write_if_complete(tests / "RELIABILITY.md")
    assert (tests / "RELIABILITY.md").read_text() == _one_session().render()

    (tests / "RELIABILITY.md").unlink()
    lost = _two_workers(shares)
    lost.workers_lost = 1
    assert not lost.write_if_complete(tests / "RELIABILITY.md")
    assert not (tests / "RELIABILITY.md").exists()
