"""The GitHub workflows: linted (actionlint, zizmor), locked down, and their shell steps run.

The request workflow is executed step by step the way a runner would: its
``run:`` scripts go to bash with a simulated event (``GITHUB_EVENT_PATH``) whose
issue text is hostile, ``GITHUB_OUTPUT``/``GITHUB_STEP_SUMMARY`` files, fake
``gh``/``git``/``pip`` that record their arguments, and the real ``mirrorbot``.
Expressions (``${{ }}``) are substituted from the simulated context exactly as
Actions would, so a workflow that pasted issue text into a script would run it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.jobs.timebudget import MAX_GRACE, parse_duration

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = ROOT / "action.yml"
BIN = Path(sys.executable).parent
HOSTILE_TEXT = (
    "$(touch PWNED1) `touch PWNED2` \"; touch PWNED3; echo \" '; touch PWNED4; ' "
    "${{ github.token }} {{ 7*7 }} $GITHUB_TOKEN && touch PWNED5 || touch PWNED6"
)
SHA_PIN = re.compile(r"uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")
UNTRUSTED = re.compile(
    r"github\.event\.(issue|comment|pull_request|review|discussion|head_commit|commits|pages)"
    r"|github\.head_ref|inputs\.|client_payload"
)


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return document


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    located = shutil.which(name)
    if located is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return located


# --------------------------------------------------------------------------- linters


def test_the_workflows_exist() -> None:
    names = {path.name for path in workflow_files()}
    assert {"ci.yml", "sync.yml", "request.yml"} <= names
    assert ACTION.exists()
    assert (ROOT / ".github" / "ISSUE_TEMPLATE" / "mirror-request.yml").exists()


def test_actionlint_is_clean() -> None:
    result = subprocess.run(
        [
            tool("actionlint"),
            "-no-color",
            "-shellcheck",
            tool("shellcheck"),
            "-pyflakes",
            "",
            *map(str, workflow_files()),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_catches_an_injection() -> None:
    # Guards the gate itself: the linter in use does flag the classic mistake.
    bad = (
        "on: issues\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        '    steps:\n      - run: echo "${{ github.event.issue.body }}"\n'
    )
    result = subprocess.run(
        [tool("actionlint"), "-no-color", "-shellcheck", "", "-pyflakes", "", "-"],
        input=bad,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "github.event.issue.body" in result.stdout


def _zizmor(
    *inputs: str, cwd: Path = ROOT, persona: str = "regular"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--no-progress",
            "--persona",
            persona,
            "--format",
            "json",
            *inputs,
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_is_clean(persona: str) -> None:
    # The auditor persona also wants secrets only in jobs that run in a GitHub environment.
    result = _zizmor(".github", "action.yml", persona=persona)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == [], result.stdout


def test_zizmor_catches_an_injection(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: issues\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        '    steps:\n      - run: echo "${{ github.event.issue.title }}"\n'
    )
    result = _zizmor(".github", cwd=tmp_path)
    assert result.returncode != 0
    assert "template-injection" in {finding["ident"] for finding in json.loads(result.stdout)}


def test_zizmor_auditor_catches_secrets_outside_an_environment(tmp_path: Path) -> None:
    """Guards the auditor gate: a secret in a job without ``environment:`` is flagged."""
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    permissions: {}\n    steps:\n      - run: echo hi\n"
        "        env:\n          TOKEN: ${{ secrets.DOCKERHUB_TOKEN }}\n"
    )
    result = _zizmor(".github", cwd=tmp_path, persona="auditor")
    assert "secrets-outside-env" in {finding["ident"] for finding in json.loads(result.stdout)}


# --------------------------------------------------------------------------- locked down


def _steps(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    if "runs" in document:
        yield from document["runs"]["steps"]
    for job in document.get("jobs", {}).values():
        yield from job.get("steps", [])


ALL_FILES = [*workflow_files(), ACTION]


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_by_sha_with_a_version_comment(path: Path) -> None:
    lines = [line.strip() for line in path.read_text().splitlines()]
    uses = [
        line.removeprefix("- ") for line in lines if line.removeprefix("- ").startswith("uses:")
    ]
    assert uses, path
    for line in uses:
        assert SHA_PIN.fullmatch(line), line


PINNED = {
    "actions/checkout": ("34e114876b0b11c390a56381ad16ebd13914f8d5", "v4.3.1"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "actions/upload-artifact": ("ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"),
    "actions/download-artifact": ("d3f86a106a0bac45b974a628896c90dbdf5c8093", "v4.3.0"),
}


def test_one_version_of_each_action_everywhere() -> None:
    seen = set()
    for path in ALL_FILES:
        for line in path.read_text().splitlines():
            found = SHA_PIN.fullmatch(line.strip().removeprefix("- "))
            if found:
                action, sha = found.group(1), found.group(2)
                assert PINNED[action] == (sha, line.rsplit("# ", 1)[1]), (path.name, line)
                seen.add(action)
    assert seen == set(PINNED)


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_permissions_are_empty_at_the_top_and_granted_per_job(path: Path) -> None:
    document = load(path)
    assert document["permissions"] == {}
    for name, job in document["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} has no permissions"
        granted = job["permissions"]
        assert all(value in ("read", "write", "none") for value in granted.values())
    for step in _steps(document):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, path.name


def test_only_the_jobs_that_push_can_write() -> None:
    writers = {
        (path.name, name, scope)
        for path in workflow_files()
        for name, job in load(path)["jobs"].items()
        for scope, value in job["permissions"].items()
        if value == "write"
    }
    assert writers == {
        ("sync.yml", "publish", "contents"),
        ("sync.yml", "alert", "issues"),
        ("sync.yml", "keep-alive", "actions"),
        ("request.yml", "check", "issues"),
        ("request.yml", "commit", "contents"),
        ("request.yml", "commit", "issues"),
        ("request.yml", "pull-request", "contents"),
        ("request.yml", "pull-request", "issues"),
        ("request.yml", "pull-request", "pull-requests"),
    }


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_no_expression_inside_a_script(path: Path) -> None:
    """Untrusted text never reaches a script through ``${{ }}``; we go further: nothing does."""
    for step in _steps(load(path)):
        script = step.get("run", "")
        for expression in _EXPRESSION.findall(script):
            assert not UNTRUSTED.search(expression), (path.name, expression)
        assert "${{" not in script, (path.name, step.get("name"), script)


def test_sync_workflow_shape() -> None:
    document = load(WORKFLOWS / "sync.yml")
    triggers = document[True] if True in document else document["on"]  # YAML 1.1 "on"
    assert "schedule" in triggers
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"namespace", "dry_run"}
    assert triggers["workflow_dispatch"]["inputs"]["dry_run"]["type"] == "boolean"
    assert triggers["repository_dispatch"]["types"] == ["mirror-images"]
    assert document["concurrency"]["cancel-in-progress"] is False
    jobs = document["jobs"]
    assert jobs["copy"]["strategy"] == {
        "fail-fast": False,
        "matrix": "${{ fromJSON(needs.plan.outputs.matrix) }}",
    }
    # The matrix is only built from a plan that has shards.
    assert jobs["copy"]["if"] == "${{ needs.plan.outputs.copy == 'true' }}"
    assert "vars.MIRRORBOT_SHARDS || '1'" in json.dumps(jobs["plan"])
    # A re-run of "failed jobs" re-runs publish only when it is not cancelled, never always().
    assert jobs["publish"]["if"] == (
        "${{ !cancelled() && needs.plan.result == 'success' "
        "&& needs.plan.outputs.copy == 'true' && !inputs.dry_run }}"
    )
    assert "always()" not in jobs["publish"]["if"]
    uploads = [
        step
        for job in jobs.values()
        for step in job["steps"]
        if "upload-artifact" in step.get("uses", "")
    ]
    assert uploads
    assert all(step["with"]["overwrite"] is True for step in uploads)
    fragment = next(s for s in uploads if s["with"]["name"].startswith("fragment-"))
    assert fragment["if"].startswith("${{ always()")
    assert fragment["with"]["name"] == "fragment-${{ strategy.job-index }}"
    download = next(s for s in jobs["publish"]["steps"] if "download" in s.get("uses", ""))
    assert download["with"]["pattern"] == "fragment-*"
    assert any("mirrorbot publish fragments/" in s.get("run", "") for s in jobs["publish"]["steps"])
    # A shard stopped by its step timeout still uploads what it copied.
    copy_step = next(s for s in jobs["copy"]["steps"] if s.get("name") == "Copy this shard")
    assert copy_step["timeout-minutes"] < jobs["copy"]["timeout-minutes"]
    # Registry secrets only in jobs that run in the `mirror` environment.
    for name, job in jobs.items():
        if "secrets.DOCKERHUB" in json.dumps(job):
            assert job.get("environment") == "mirror", name


def sync_group(event_name: str, event: dict[str, Any], run_id: int) -> str:
    document = load(WORKFLOWS / "sync.yml")
    runner = Runner(Path(f"/nonexistent/{run_id}"), event, event_name, run_id=run_id, lazy=True)
    return runner.substitute(document["concurrency"]["group"])


def test_sync_triggers_never_replace_each_others_pending_runs() -> None:
    def dispatch(namespace: str, dry_run: bool = False) -> dict[str, Any]:
        return {"inputs": {"namespace": namespace, "dry_run": dry_run}}

    notification = {"action": "mirror-images", "client_payload": {"images": ["quay.io/a/b"]}}
    groups = {
        "nightly": sync_group("schedule", {}, 1),
        "dispatch all": sync_group("workflow_dispatch", dispatch(""), 2),
        "dispatch dry": sync_group("workflow_dispatch", dispatch("", True), 3),
        "dispatch one": sync_group("workflow_dispatch", dispatch("quay.io/coreos"), 4),
        "dispatch other": sync_group("workflow_dispatch", dispatch("gcr.io/google-containers"), 5),
        "notification": sync_group("repository_dispatch", notification, 6),
        "another notification": sync_group("repository_dispatch", notification, 7),
    }
    assert len(set(groups.values())) == len(groups), groups
    # Only the same work replaces a pending run: tonight's nightly, the same dispatch.
    assert sync_group("schedule", {}, 8) == groups["nightly"]
    assert sync_group("workflow_dispatch", dispatch("quay.io/coreos"), 9) == groups["dispatch one"]


def test_request_runs_are_grouped_per_issue() -> None:
    document = load(WORKFLOWS / "request.yml")
    assert document["concurrency"]["cancel-in-progress"] is False
    groups = {
        Runner(Path("/nonexistent"), issue_event("", number), "issues", lazy=True).substitute(
            document["concurrency"]["group"]
        )
        for number in (1, 2, 3)
    }
    assert len(groups) == 3, groups


# --------------------------------------------------------------------------- a tiny runner


_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class Runner:
    """Runs the ``run:`` steps of a workflow's jobs as GitHub's runner would, locally."""

    tmp: Path
    event: dict[str, Any]
    event_name: str
    workflow_env: dict[str, str] = field(default_factory=dict)
    token: str = "ghs_FAKE_TOKEN_0123456789abcdef"
    fake_responses: dict[str, int] = field(default_factory=dict)
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    job_outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    job_results: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    expressions: list[str] = field(default_factory=list)
    matrix: dict[str, str] = field(default_factory=dict)
    fake_stdout: dict[str, str] = field(default_factory=dict)
    run_id: int = 4242
    lazy: bool = False  # only evaluate expressions: create nothing on disk
    grouped: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.lazy:
            return
        self.workspace = self.tmp / "workspace"
        self.runner_temp = self.tmp / "runner-temp"
        self.fakes = self.tmp / "fake-bin"
        self.log = self.tmp / "calls.jsonl"
        for directory in (self.workspace, self.runner_temp, self.fakes):
            directory.mkdir(parents=True, exist_ok=True)
        self.event_path = self.tmp / "event.json"
        self.event_path.write_text(json.dumps(self.event))
        self.summary = self.tmp / "step-summary.md"
        self.summary.touch()
        for name in ("gh", "git", "pip"):
            self.fake(name)
        # `python -m pip install .` must not reinstall into the test's virtualenv.
        self.fake("python", passthrough=sys.executable, unless_args=("-m", "pip"))
        wrapper = self.fakes / "mirrorbot"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mirrorbot "$@"\n')
        wrapper.chmod(0o755)

    def fake(
        self,
        name: str,
        *,
        passthrough: str | None = None,
        unless_args: tuple[str, ...] = (),
        stdout: str = "",
        code: int | None = None,
    ) -> None:
        """A command that appends its argv (and any --body-file content) to the call log."""
        path = self.fakes / name
        path.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            f"name, passthrough, unless = {name!r}, {passthrough!r}, {list(unless_args)!r}\n"
            "args = sys.argv[1:]\n"
            "if name == 'git' and args == ['version']:  # GitPython asks on import\n"
            "    sys.exit(print('git version 2.39.5'))\n"
            "if passthrough and args[: len(unless)] != unless:\n"
            "    os.execv(passthrough, [passthrough, *args])\n"
            "entry = {'cmd': name, 'args': args, 'cwd': os.getcwd()}\n"
            "if '--body-file' in args:\n"
            "    entry['body'] = open(args[args.index('--body-file') + 1]).read()\n"
            "token = os.environ.get('GH_TOKEN') or os.environ.get('GITHUB_TOKEN') or '\\0'\n"
            "entry['token_in_args'] = any(token in arg for arg in args)\n"
            f"open({str(self.log)!r}, 'a').write(json.dumps(entry) + '\\n')\n"
            f"sys.stdout.write({self.fake_stdout!r}.get(' '.join([name, *args[:2]]), {stdout!r}))\n"
            f"responses = {self.fake_responses!r}\n"
            + (
                f"sys.exit({code!r})\n"
                if code is not None
                else "sys.exit(responses.get(' '.join([name, *args[:2]]), 0))\n"
            )
        )
        path.chmod(0o755)

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [entry for entry in entries if name is None or entry["cmd"] == name]

    # -- expressions ------------------------------------------------------

    def value(self, expression: str) -> Any:
        self.expressions.append(expression)
        parts = expression.split(".")
        if expression in ("github.token", "secrets.GITHUB_TOKEN"):
            return self.token
        if parts[0] == "github" and parts[1] == "event":
            node: Any = self.event
            for part in parts[2:]:
                node = node.get(part, "") if isinstance(node, dict) else ""
            return node
        if parts[0] == "github" and parts[1] == "event_name":
            return self.event_name
        if expression == "github.repository":
            return "owner/mirror"
        if expression == "github.server_url":
            return "https://github.com"
        if expression == "github.run_id":
            return self.run_id
        if expression in self.grouped:
            return self.grouped[expression]
        if parts[0] == "steps" and parts[2] == "outputs":
            return self.step_outputs.get(parts[1], {}).get(parts[3], "")
        if parts[0] == "needs" and parts[2] == "outputs":
            return self.job_outputs.get(parts[1], {}).get(parts[3], "")
        if parts[0] == "needs" and parts[2] == "result":
            return self.job_results.get(parts[1], "skipped")
        if parts[0] == "env":
            return self.workflow_env.get(parts[1], "")
        if expression == "runner.temp":
            return str(self.runner_temp)
        if expression == "github.action_path":
            return str(ROOT)
        if parts[0] == "matrix":
            return self.matrix.get(parts[1], "")
        if parts[0] == "inputs":
            return self.event.get("inputs", {}).get(parts[1], "")
        if parts[0] in ("secrets", "vars"):
            return ""
        raise AssertionError(f"the test runner does not know the expression {expression!r}")

    def substitute(self, text: str) -> str:
        return _EXPRESSION.sub(lambda m: self.text(self.evaluate(m.group(1))), text)

    @staticmethod
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def evaluate(self, expression: str) -> Any:
        """The small subset of the expression language the workflows use."""
        expression = expression.strip()
        inner = _EXPRESSION.fullmatch(expression)
        if inner:
            return self.evaluate(inner.group(1))
        # A parenthesised group (not a function call's arguments) is evaluated first.
        group = re.search(r"(?<![\w(])\(([^()]*(?:\([^()]*\)[^()]*)*)\)", expression)
        if group:
            key = f"__group{len(self.grouped)}__"
            self.grouped[key] = self.evaluate(group.group(1))
            return self.evaluate(expression[: group.start()] + key + expression[group.end() :])
        if expression == "cancelled()":
            return False
        if expression == "toJSON(needs)":
            return json.dumps(
                {
                    job: {"result": result, "outputs": self.job_outputs.get(job, {})}
                    for job, result in self.job_results.items()
                }
            )
        starts = re.fullmatch(r"startsWith\(([\w.]+),\s*'([^']*)'\)", expression)
        if starts:
            return str(self.value(starts.group(1))).lower().startswith(starts.group(2).lower())
        if "||" in expression:  # lowest precedence; yields the first truthy operand
            terms = [self.evaluate(term) for term in expression.split("||")]
            return next((t for t in terms if self.truthy(t)), terms[-1])
        if "&&" in expression:  # yields the first falsy operand, else the last
            terms = [self.evaluate(term) for term in expression.split("&&")]
            return next((t for t in terms if not self.truthy(t)), terms[-1])
        for operator in ("==", "!="):
            if operator in expression:
                left, right = (self.evaluate(side) for side in expression.split(operator))
                equal = str(left).lower() == str(right).lower()
                return equal if operator == "==" else not equal
        if expression.startswith("!"):
            return not self.truthy(self.evaluate(expression[1:]))
        if expression == "always()":
            return True
        literal = re.fullmatch(r"'([^']*)'", expression)
        if literal:
            return literal.group(1)
        contains = re.fullmatch(r"contains\(([\w.*-]+),\s*'([^']*)'\)", expression)
        if contains:
            path, wanted = contains.groups()
            head, _, attribute = path.partition(".*.")
            items = self.value(head)
            return any(item.get(attribute) == wanted for item in items or [])
        return self.value(expression)

    @staticmethod
    def truthy(value: Any) -> bool:
        return value not in (False, "", None, 0, "false")

    # -- running ----------------------------------------------------------

    def environment(self, *layers: Mapping[str, Any]) -> dict[str, str]:
        env = {
            "PATH": f"{self.fakes}:{os.environ['PATH']}",
            "HOME": str(self.tmp / "home"),
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_EVENT_PATH": str(self.event_path),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_REF_NAME": "main",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "owner/mirror",
            "RUNNER_TEMP": str(self.runner_temp),
        }
        for layer in layers:
            env.update({key: self.substitute(str(value)) for key, value in layer.items()})
        return env

    def run_job(self, document: Mapping[str, Any], name: str) -> bool:
        """Run one job if its ``if:`` holds; returns whether it ran."""
        job = document["jobs"][name]
        if "if" in job and not self.truthy(self.evaluate(job["if"])):
            self.job_results[name] = "skipped"
            return False
        for index, step in enumerate(job["steps"]):
            if "if" in step and not self.truthy(self.evaluate(step["if"])):
                continue
            if "uses" in step:
                self.use(step)
                continue
            output = self.tmp / f"output-{name}-{index}"
            output.write_text("")
            env = self.environment(self.workflow_env, job.get("env", {}), step.get("env", {}))
            env["GITHUB_OUTPUT"] = str(output)
            script = self.tmp / f"step-{name}-{index}.sh"
            script.write_text(self.substitute(step["run"]))
            # GitHub's shells: `bash -e {0}` by default, stricter when `shell: bash` is set.
            shell = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
            result = subprocess.run(
                [*(shell if step.get("shell") == "bash" else ["bash", "-e"]), str(script)],
                cwd=self.workspace,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            if result.returncode != 0:
                self.job_results[name] = "failure"
                raise AssertionError(
                    f"{name}: step {step.get('name', index)!r} failed ({result.returncode}):\n"
                    + result.stdout
                    + result.stderr
                )
            if "id" in step:
                self.step_outputs[step["id"]] = dict(
                    line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
                )
        self.job_outputs[name] = {
            key: self.text(self.evaluate(value)) for key, value in job.get("outputs", {}).items()
        }
        self.job_results[name] = "success"
        self.step_outputs.clear()
        return True

    def use(self, step: Mapping[str, Any]) -> None:
        """The actions the workflows use, as far as the scripts can tell."""
        action = str(step["uses"]).partition("@")[0]
        inputs = {key: self.substitute(str(value)) for key, value in step.get("with", {}).items()}
        if action == "actions/upload-artifact":
            stored = self.tmp / "artifacts" / inputs["name"]
            source = Path(self.workspace, inputs["path"])
            if source.is_dir():
                shutil.copytree(source, stored, dirs_exist_ok=True)
            elif source.exists():
                stored.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, stored)
            self.artifacts[inputs["name"]] = stored
        elif action == "actions/download-artifact":
            target = Path(self.workspace, inputs.get("path", "."))
            shutil.copytree(self.artifacts[inputs["name"]], target, dirs_exist_ok=True)
        else:
            assert action in ("actions/checkout", "actions/setup-python"), action


# --------------------------------------------------------------------------- request.yml


def request_config(registry: LocalRegistry, *, pull_request: bool = False) -> str:
    return f"""\
# Requests test: one namespace so far.
mirror:
  registry: 127.0.0.1:9   # a request never talks to the mirror
  namespace: mirrored
namespaces:
  - source: {registry.host}/already/there
    list: images
    images: [pause]
requests:
  open_pull_request: {"true" if pull_request else "false"}
  allowed_registries: [{registry.host}]
"""


def issue_event(body: str, number: int = 42) -> dict[str, Any]:
    return {
        "action": "opened",
        "issue": {
            "number": number,
            "title": HOSTILE_TEXT,
            "body": body,
            "state": "open",
            "labels": [{"name": "mirror-request"}, {"name": "needs-changes"}],
            "user": {"login": "$(touch PWNED7)"},
        },
        "repository": {"default_branch": "main", "full_name": "owner/mirror"},
        "sender": {"login": "`touch PWNED8`"},
    }


def issue_body(namespace: str, note: str = "_No response_") -> str:
    return (
        f"### Upstream namespace\n\n{namespace}\n\n### Images\n\n_No response_\n\n"
        f"### Include tag regexes\n\n_No response_\n\n### Note\n\n{note}\n"
    )


def run_request_workflow(
    tmp_path: Path, registry: LocalRegistry, body: str, *, pull_request: bool = False
) -> Runner:
    document = load(WORKFLOWS / "request.yml")
    runner = Runner(
        tmp_path,
        issue_event(body),
        "issues",
        workflow_env=document.get("env", {}),
        fake_responses={"gh pr view": 1},
    )
    (runner.workspace / "mirrorbot.yaml").write_text(
        request_config(registry, pull_request=pull_request)
    )
    for job in document["jobs"]:
        runner.run_job(document, job)
    return runner


def assert_nothing_ran(tmp_path: Path) -> None:
    planted = sorted(str(p) for p in tmp_path.rglob("PWNED*"))
    assert planted == [], planted
    assert not list(Path.cwd().glob("PWNED*"))
    assert not list(ROOT.glob("PWNED*"))


def gh_calls(runner: Runner) -> list[list[str]]:
    return [call["args"] for call in runner.calls("gh")]


def test_request_workflow_with_a_hostile_body_runs_nothing(
    tmp_path: Path, source_registry: LocalRegistry
) -> None:
    runner = run_request_workflow(tmp_path, source_registry, issue_body(HOSTILE_TEXT, HOSTILE_TEXT))
    assert_nothing_ran(tmp_path)
    calls = gh_calls(runner)
    # The label exists before anything else (the issue has it already: not applied again).
    assert calls[0][:3] == ["label", "create", "mirror-request"]
    assert not any(call[:2] == ["issue", "edit"] and "mirror-request" in call for call in calls)
    comment = calls[1]
    assert comment[:3] == ["issue", "comment", "42"]
    assert comment[3] == "--body-file"
    assert "Request not accepted" in runner.calls("gh")[1]["body"]
    assert ["issue", "edit", "42", "--add-label", "needs-changes"] in calls
    assert not any(call[:2] == ["issue", "close"] for call in calls)
    assert runner.job_results == {
        "check": "success",
        "commit": "skipped",
        "pull-request": "skipped",
    }
    assert runner.calls("git") == []
    assert (runner.workspace / "mirrorbot.yaml").read_text() == request_config(source_registry)
    assert not any(call["token_in_args"] for call in runner.calls())
    # The hostile text was quoted inertly in the reply, and in the job summary.
    assert "Request not accepted" in runner.summary.read_text()


def test_request_workflow_scripts_reference_no_issue_text() -> None:
    document = load(WORKFLOWS / "request.yml")
    for job in document["jobs"].values():
        for step in job["steps"]:
            for expression in _EXPRESSION.findall(step.get("run", "")):
                assert not UNTRUSTED.search(expression.replace("github.event.issue.number", ""))
            for value in step.get("env", {}).values():
                for expression in _EXPRESSION.findall(str(value)):
                    assert expression in (
                        "github.token",
                        "github.repository",
                        "github.event.issue.number",
                    ) or expression.startswith(("steps.", "needs.")), expression


def test_the_runner_would_catch_an_injection(tmp_path: Path) -> None:
    """Guards the test: a workflow that pasted the body into a script plants the file."""
    document = {
        "jobs": {"bad": {"steps": [{"run": 'echo "${{ github.event.issue.body }}"'}]}},
    }
    runner = Runner(tmp_path, issue_event(HOSTILE_TEXT), "issues")
    with contextlib.suppress(AssertionError):  # bash may fail once the files are planted
        runner.run_job(document, "bad")
    assert (runner.workspace / "PWNED1").exists()


def test_request_workflow_accepts_commits_and_closes(
    tmp_path: Path, source_registry: LocalRegistry, ns: str
) -> None:
    image = ImageFactory(ns).image("app")
    with Seeder(source_registry.url) as seeder:
        seeder.push(f"{ns}/wanted/app", "v1", image)
    namespace = f"{source_registry.host}/{ns}/wanted"
    runner = run_request_workflow(
        tmp_path, source_registry, issue_body(f"https://{namespace}/", HOSTILE_TEXT)
    )
    assert_nothing_ran(tmp_path)
    assert runner.job_results == {
        "check": "success",
        "commit": "success",
        "pull-request": "skipped",
    }
    assert f"  - source: {namespace}\n" in (runner.workspace / "mirrorbot.yaml").read_text()
    calls = gh_calls(runner)
    assert calls[0][:3] == ["label", "create", "mirror-request"]
    assert calls[1][:4] == ["issue", "comment", "42", "--body-file"]
    assert "Request accepted" in runner.calls("gh")[1]["body"]
    assert ["issue", "edit", "42", "--add-label", "accepted"] in calls
    assert ["issue", "edit", "42", "--remove-label", "needs-changes"] in calls
    assert calls[-1] == ["issue", "close", "42", "--reason", "completed"]
    assert not any("needs-changes" in call and "--add-label" in call for call in calls)
    git = [call["args"] for call in runner.calls("git")]
    assert git == [
        ["add", "--", "mirrorbot.yaml"],
        ["commit", "-m", f"mirror: add {namespace} (#42)"],
        ["pull", "--rebase", "origin", "main"],
        ["push", "origin", "HEAD:main"],
    ]
    assert not any(call["token_in_args"] for call in runner.calls())
    assert all(runner.token not in json.dumps(call) for call in runner.calls())


def test_request_workflow_opens_a_pull_request_when_configured(
    tmp_path: Path, source_registry: LocalRegistry, ns: str
) -> None:
    with Seeder(source_registry.url) as seeder:
        seeder.push(f"{ns}/viapr/app", "v1", ImageFactory(ns).image("app"))
    namespace = f"{source_registry.host}/{ns}/viapr"
    runner = run_request_workflow(
        tmp_path, source_registry, issue_body(namespace), pull_request=True
    )
    assert runner.job_results == {
        "check": "success",
        "commit": "skipped",
        "pull-request": "success",
    }
    calls = gh_calls(runner)
    create = next(call for call in calls if call[:2] == ["pr", "create"])
    assert create == [
        "pr",
        "create",
        "--base",
        "main",
        "--head",
        "mirror-request-42",
        "--title",
        f"mirror: add {namespace}",
        "--body",
        "Closes #42",
    ]
    assert not any(call[:2] == ["issue", "close"] for call in calls)
    git = [call["args"] for call in runner.calls("git")]
    assert ["push", "--force", "origin", "HEAD:refs/heads/mirror-request-42"] in git


def test_request_workflow_ignores_issues_without_the_label(
    tmp_path: Path, source_registry: LocalRegistry
) -> None:
    document = load(WORKFLOWS / "request.yml")
    event = issue_event(issue_body("quay.io/coreos"))
    event["issue"]["labels"] = [{"name": "bug"}]
    runner = Runner(tmp_path, event, "issues", workflow_env=document["env"])
    assert runner.run_job(document, "check") is False
    closed = issue_event(issue_body("quay.io/coreos"))
    closed["issue"]["state"] = "closed"
    runner = Runner(tmp_path / "closed", closed, "issues", workflow_env=document["env"])
    assert runner.run_job(document, "check") is False
    assert runner.calls() == []


# --------------------------------------------------------------------------- sync.yml, action.yml


def test_sync_dispatch_passes_references_as_arguments_only(tmp_path: Path) -> None:
    document = load(WORKFLOWS / "sync.yml")
    refs = ["quay.io/coreos/etcd:v3.5.9", "$(touch PWNED1)", "`touch PWNED2`", "a b; touch PWNED3"]
    event = {"action": "mirror-images", "client_payload": {"images": refs}}
    runner = Runner(tmp_path, event, "repository_dispatch", workflow_env=document["env"])
    runner.fake("mirrorbot")
    (runner.workspace / "plan").mkdir()
    runner.job_outputs["plan"] = {"run-time": "2026-11-23T03:04:05Z"}
    runner.matrix = {"shard": "1/1"}
    copy = document["jobs"]["copy"]
    step = next(s for s in copy["steps"] if s.get("name") == "Copy this shard")
    runner.run_job({"jobs": {"copy": {"steps": [step]}}}, "copy")
    assert_nothing_ran(tmp_path)
    (call,) = runner.calls("mirrorbot")
    args = call["args"]
    assert args[:7] == [
        "sync",
        "--shard",
        "1/1",
        "--assignments",
        "plan/plan.json",
        "--run-time",
        "2026-11-23T03:04:05Z",
    ]
    images = [args[i + 1] for i, arg in enumerate(args) if arg == "--image"]
    assert images == refs
    assert args[-3:] == ["--no-push", "--output", "fragments/"]


def test_sync_plan_step_emits_the_matrix(tmp_path: Path) -> None:
    document = load(WORKFLOWS / "sync.yml")
    runner = Runner(
        tmp_path, {"inputs": {"namespace": "quay.io/$(touch PWNED1)"}}, "workflow_dispatch"
    )
    runner.workflow_env = document["env"]
    plan = {"matrix": {"shard": ["1/2", "2/2"]}, "assignments": {}, "loads": [1, 1]}
    # Exit 1: a namespace failed to list; the shards still run (and report it again).
    runner.fake("mirrorbot", stdout=json.dumps(plan), code=1)
    job = document["jobs"]["plan"]
    step = next(s for s in job["steps"] if s.get("id") == "plan")
    runner.run_job({"jobs": {"plan": {"steps": [step], "outputs": job["outputs"]}}}, "plan")
    assert_nothing_ran(tmp_path)
    assert json.loads(runner.job_outputs["plan"]["matrix"]) == plan["matrix"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", runner.job_outputs["plan"]["run-time"])
    (call,) = runner.calls("mirrorbot")
    assert call["args"] == [
        "plan",
        "--shards",
        "1",
        "--json",
        "--namespace",
        "quay.io/$(touch PWNED1)",
    ]


def test_action_passes_inputs_through_the_environment(tmp_path: Path) -> None:
    action = load(ACTION)
    runner = Runner(tmp_path, {}, "workflow_dispatch")  # inputs.* resolve from event["inputs"]
    runner.fake("mirrorbot")
    (runner.workspace / "keep-me").touch()  # a glob in the args must not expand to it
    runner.event = {
        "inputs": {
            "config": "my config.yaml",
            "args": "--dry-run  --namespace quay.io/x $(touch PWNED1) * `touch PWNED2`",
            "python-version": "3.11",
        }
    }
    runner.run_job({"jobs": {"action": {"steps": action["runs"]["steps"]}}}, "action")
    assert_nothing_ran(tmp_path)
    locked, package = runner.calls("python")
    # Dependencies from the lock, hashes checked; then mirrorbot alone, resolving nothing.
    assert locked["args"] == [
        "-m",
        "pip",
        "install",
        "--require-hashes",
        "-r",
        f"{ROOT}/requirements.lock",
    ]
    assert package["args"] == [
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        str(ROOT),
    ]
    (call,) = runner.calls("mirrorbot")
    assert call["args"] == [
        "sync",
        "--config",
        "my config.yaml",
        "--dry-run",
        "--namespace",
        "quay.io/x",
        "$(touch",
        "PWNED1)",
        "*",
        "`touch",
        "PWNED2`",
    ]


def run_step(runner: Runner, document: Mapping[str, Any], job: str, name: str) -> None:
    """Run one named step of a job (with the job's ``outputs:``) through the runner."""
    spec = document["jobs"][job]
    step = next(s for s in spec["steps"] if s.get("name") == name or s.get("id") == name)
    runner.run_job({"jobs": {job: {"steps": [step], "outputs": spec.get("outputs", {})}}}, job)


@pytest.mark.parametrize(
    ("stdout", "code"),
    [("", 1), ('{"matrix": {"shard": []}, "assignments": {}}', 1), ("not json", 1)],
    ids=["no output", "no shard", "garbage"],
)
def test_a_failed_plan_skips_the_copy_and_says_why(tmp_path: Path, stdout: str, code: int) -> None:
    """A typo'd namespace: plan exits 1 with nothing planned; no matrix of nothing is built."""
    document = load(WORKFLOWS / "sync.yml")
    runner = Runner(tmp_path, {"inputs": {"namespace": "quay.io/typo"}}, "workflow_dispatch")
    runner.workflow_env = document["env"]
    runner.fake("mirrorbot", stdout=stdout, code=code)
    with pytest.raises(AssertionError, match=r"::error::mirrorbot plan failed \(exit 1\)"):
        run_step(runner, document, "plan", "plan")
    assert runner.job_results["plan"] == "failure"
    output = (tmp_path / "output-plan-0").read_text()
    assert "copy=false" in output
    assert "matrix=" not in output
    # The copy job's condition is false: its matrix expression is never evaluated.
    runner.job_outputs["plan"] = {"copy": "false", "matrix": ""}
    assert runner.run_job(document, "copy") is False
    assert runner.truthy(runner.evaluate(document["jobs"]["publish"]["if"])) is False


def test_a_plan_with_nothing_to_copy_succeeds_without_a_copy(tmp_path: Path) -> None:
    document = load(WORKFLOWS / "sync.yml")
    runner = Runner(tmp_path, {"inputs": {"namespace": ""}}, "workflow_dispatch")
    runner.workflow_env = document["env"]
    runner.fake("mirrorbot", stdout='{"matrix": {"shard": []}, "assignments": {}}', code=0)
    run_step(runner, document, "plan", "plan")
    assert runner.job_outputs["plan"]["copy"] == "false"
    assert runner.job_outputs["plan"]["matrix"] == ""


def test_a_plan_with_shards_runs_the_copy(tmp_path: Path) -> None:
    document = load(WORKFLOWS / "sync.yml")
    runner = Runner(tmp_path, {}, "schedule")
    runner.workflow_env = document["env"]
    runner.fake("mirrorbot", stdout='{"matrix": {"shard": ["1/1"]}, "assignments": {}}', code=0)
    run_step(runner, document, "plan", "plan")
    assert runner.job_outputs["plan"]["copy"] == "true"
    assert runner.truthy(runner.evaluate(document["jobs"]["copy"]["if"]))
    runner.job_results["copy"] = "failure"  # one shard failed: the others are still published
    assert runner.truthy(runner.evaluate(document["jobs"]["publish"]["if"]))


def test_publish_writes_the_merged_report_to_the_summary(tmp_path: Path) -> None:
    document = load(WORKFLOWS / "sync.yml")
    runner = Runner(tmp_path, {}, "schedule", workflow_env=document["env"])
    reports = runner.workspace / "reports"
    reports.mkdir()
    (reports / "shard-1.md").write_text("## mirrorbot sync\n\n| new | 3 |\n")
    (reports / "shard-2.md").write_text("## mirrorbot sync\n\n**failed**\n\n- `a/b:1`: boom\n")
    runner.fake("mirrorbot", stdout="merged 2 fragments: 3 tags recorded\n", code=1)
    with pytest.raises(AssertionError, match="failed \\(1\\)"):
        run_step(runner, document, "publish", "Merge the fragments, commit and push once")
    (call,) = runner.calls("mirrorbot")
    assert call["args"] == ["publish", "fragments/"]
    summary = runner.summary.read_text()
    assert "| new | 3 |" in summary
    assert "- `a/b:1`: boom" in summary
    assert "## mirrorbot publish (exit 1)" in summary
    assert "merged 2 fragments: 3 tags recorded" in summary
    assert (reports / "publish.txt").read_text() == "merged 2 fragments: 3 tags recorded\n"


# --------------------------------------------------------------------------- failure alerting

SHARD_REPORT = (
    "## mirrorbot sync\n\n| | |\n|---|---:|\n| failed | 4 |\n\n"
    "**listing failed**\n\n- quay.io/typo: lists no repositories: check the name or set `list:`\n\n"
    "**failed**\n\n- 3 images (`a/x:1`, `a/y:1`, `a/z:1`): 503 Service Unavailable\n"
    f"- `b/w:2`: {HOSTILE_TEXT}\n\n**warnings**\n\n- a warning that is no failure\n"
)


def run_alert(
    tmp_path: Path,
    results: dict[str, str],
    *,
    open_issue: str = "",
    event_name: str = "schedule",
    event: dict[str, Any] | None = None,
) -> Runner:
    document = load(WORKFLOWS / "sync.yml")
    runner = Runner(
        tmp_path,
        event or {},
        event_name,
        workflow_env=document["env"],
        fake_stdout={"gh issue list": f"{open_issue}\n" if open_issue else ""},
        run_id=777,
    )
    runner.job_results.update(results)
    reports = runner.workspace / "reports"
    reports.mkdir()
    (reports / "shard-1.md").write_text(SHARD_REPORT)
    (reports / "publish.txt").write_text(
        "merged 1 fragments: 0 tags recorded\nfailed: a/x:1: 503\n"
        "shard 2 left no fragment: its images are picked up by the next run\n"
    )
    assert runner.truthy(runner.evaluate(document["jobs"]["alert"]["if"]))
    run_step(runner, document, "alert", "Report this run on the mirror-failure issue")
    return runner


FAILED = {"plan": "success", "copy": "failure", "publish": "success"}
GREEN = {"plan": "success", "copy": "success", "publish": "success"}


def test_a_failed_nightly_opens_one_mirror_failure_issue(tmp_path: Path) -> None:
    runner = run_alert(tmp_path, FAILED)
    assert_nothing_ran(tmp_path)
    calls = gh_calls(runner)
    assert calls[0][:2] == ["issue", "list"]
    assert calls[0][2:6] == ["--label", "mirror-failure", "--state", "open"]
    assert calls[1][:3] == ["label", "create", "mirror-failure"]
    create = runner.calls("gh")[2]
    assert create["args"][:6] == [
        "issue",
        "create",
        "--title",
        "Mirror sync failed",
        "--label",
        "mirror-failure",
    ]
    body = create["body"]
    assert "https://github.com/owner/mirror/actions/runs/777" in body
    assert "(jobs: copy)" in body
    # The grouped failures of the report, once; not its warnings.
    assert "- 3 images (`a/x:1`, `a/y:1`, `a/z:1`): 503 Service Unavailable" in body
    assert "quay.io/typo: lists no repositories" in body
    assert HOSTILE_TEXT in body
    assert "a warning that is no failure" not in body
    assert "shard 2 left no fragment" in body
    assert "failed: a/x:1: 503" not in body  # already listed, grouped, above
    assert len(calls) == 3
    assert not any(call["token_in_args"] for call in runner.calls())


def test_a_second_failure_comments_on_the_open_issue(tmp_path: Path) -> None:
    runner = run_alert(tmp_path, {**FAILED, "publish": "failure"}, open_issue="12")
    calls = gh_calls(runner)
    assert not any(call[:2] == ["issue", "create"] for call in calls)
    comment = runner.calls("gh")[-1]
    assert comment["args"] == ["issue", "comment", "12", "--body-file", comment["args"][-1]]
    assert "(jobs: copy, publish)" in comment["body"]


def test_a_failed_plan_is_reported_without_a_report(tmp_path: Path) -> None:
    document = load(WORKFLOWS / "sync.yml")
    runner = Runner(tmp_path, {}, "schedule", workflow_env=document["env"])
    runner.job_results.update({"plan": "failure", "copy": "skipped", "publish": "skipped"})
    run_step(runner, document, "alert", "Report this run on the mirror-failure issue")
    create = runner.calls("gh")[-1]
    assert create["args"][:2] == ["issue", "create"]
    assert "(jobs: plan)" in create["body"]
    assert "No run report" in create["body"]


def test_the_next_green_nightly_closes_the_issue(tmp_path: Path) -> None:
    runner = run_alert(tmp_path, GREEN, open_issue="12")
    calls = gh_calls(runner)
    assert calls[-1][:5] == ["issue", "close", "12", "--reason", "completed"]
    assert "actions/runs/777" in calls[-1][-1]
    assert not any(call[:2] in (["issue", "create"], ["issue", "comment"]) for call in calls)


def test_a_green_run_without_an_open_issue_does_nothing(tmp_path: Path) -> None:
    runner = run_alert(tmp_path, GREEN)
    assert [call[:2] for call in gh_calls(runner)] == [["issue", "list"]]


@pytest.mark.parametrize(
    ("event_name", "event"),
    [
        ("repository_dispatch", {"client_payload": {"images": ["a/b"]}}),
        ("workflow_dispatch", {"inputs": {"namespace": "quay.io/coreos", "dry_run": False}}),
    ],
    ids=["notification", "one namespace"],
)
def test_a_targeted_green_run_leaves_the_issue_open(
    tmp_path: Path, event_name: str, event: dict[str, Any]
) -> None:
    runner = run_alert(tmp_path, GREEN, open_issue="12", event_name=event_name, event=event)
    assert not any(call[:2] == ["issue", "close"] for call in gh_calls(runner))


def test_the_alert_job_can_only_touch_issues() -> None:
    jobs = load(WORKFLOWS / "sync.yml")["jobs"]
    alert = jobs["alert"]
    assert alert["permissions"] == {"issues": "write"}
    assert set(alert["needs"]) == {"plan", "copy", "publish"}
    assert alert["if"] == "${{ !cancelled() && !inputs.dry_run }}"
    assert "environment" not in alert
    assert "secrets." not in json.dumps(alert)


def test_keep_alive_enables_the_workflow_on_every_nightly(tmp_path: Path) -> None:
    document = load(WORKFLOWS / "sync.yml")
    job = document["jobs"]["keep-alive"]
    assert job["permissions"] == {"actions": "write"}
    assert "needs" not in job  # independent of the mirror's own success
    runner = Runner(tmp_path, {}, "schedule", workflow_env=document["env"])
    assert runner.run_job(document, "keep-alive") is True
    assert gh_calls(runner) == [
        ["api", "--method", "PUT", "repos/owner/mirror/actions/workflows/sync.yml/enable"]
    ]
    manual = Runner(tmp_path / "manual", {"inputs": {}}, "workflow_dispatch")
    assert manual.run_job(document, "keep-alive") is False


# --------------------------------------------------------------------------- request labels


def test_a_fresh_fork_gets_the_request_label_created_and_applied(
    tmp_path: Path, source_registry: LocalRegistry
) -> None:
    """The form could not apply a label that did not exist yet: its title still finds it."""
    document = load(WORKFLOWS / "request.yml")
    event = issue_event(issue_body("quay.io/coreos"))
    event["issue"]["labels"] = []
    event["issue"]["title"] = "Mirror request: quay.io/coreos"
    runner = Runner(tmp_path, event, "issues", workflow_env=document["env"])
    (runner.workspace / "mirrorbot.yaml").write_text(request_config(source_registry))
    assert runner.run_job(document, "check") is True
    calls = gh_calls(runner)
    assert calls[0][:3] == ["label", "create", "mirror-request"]
    assert calls[1] == ["issue", "edit", "42", "--add-label", "mirror-request"]
    assert calls[2][:3] == ["issue", "comment", "42"]


def test_the_request_label_is_the_same_everywhere() -> None:
    from mirrorbot.config import RequestSettings

    document = load(WORKFLOWS / "request.yml")
    label = document["env"]["LABEL"]
    assert (
        f"contains(github.event.issue.labels.*.name, '{label}')" in document["jobs"]["check"]["if"]
    )
    form = load(ROOT / ".github" / "ISSUE_TEMPLATE" / "mirror-request.yml")
    assert form["labels"] == [label]
    assert document["jobs"]["check"]["if"].count(form["title"].strip()) == 1
    assert RequestSettings().label == label
    shipped = load(ROOT / "mirrorbot.yaml").get("requests") or {}
    assert shipped.get("label", label) == label


def test_a_config_changed_under_an_accepted_request_is_said_on_the_issue(
    tmp_path: Path, source_registry: LocalRegistry, ns: str
) -> None:
    with Seeder(source_registry.url) as seeder:
        seeder.push(f"{ns}/raced/app", "v1", ImageFactory(ns).image("app"))
    document = load(WORKFLOWS / "request.yml")
    runner = Runner(
        tmp_path,
        issue_event(issue_body(f"{source_registry.host}/{ns}/raced")),
        "issues",
        workflow_env=document["env"],
        fake_responses={"git pull --rebase": 1},
    )
    (runner.workspace / "mirrorbot.yaml").write_text(request_config(source_registry))
    runner.run_job(document, "check")
    with pytest.raises(AssertionError, match="Commit, push, label and close"):
        runner.run_job(document, "commit")
    git = [call["args"] for call in runner.calls("git")]
    assert ["rebase", "--abort"] in git
    assert not any(call[:1] == ["push"] for call in git)
    reply = runner.calls("gh")[-1]
    assert reply["args"][:3] == ["issue", "comment", "42"]
    assert "changed at the same time" in reply["body"]
    assert not any(call[:2] == ["issue", "close"] for call in gh_calls(runner))


def test_a_shard_ends_by_its_time_budget_before_any_timeout() -> None:
    """The copy step passes a time budget that, with the longest grace (10 min), ends
    the run before the step's and the job's timeouts: what finished is always kept."""
    document = load(WORKFLOWS / "sync.yml")
    job = document["jobs"]["copy"]
    step = next(s for s in job["steps"] if s.get("name") == "Copy this shard")
    budget = re.search(r"--time-budget ([0-9hms.]+)", step["run"])
    assert budget is not None
    seconds = parse_duration(budget.group(1))
    assert seconds + MAX_GRACE + 5 * 60 <= step["timeout-minutes"] * 60
    assert step["timeout-minutes"] < job["timeout-minutes"]
