"""`mirrorbot request`: issue-form bodies, friendly and hostile, against a real registry.

Every rejection must leave ``mirrorbot.yaml`` byte-identical and give a reply
in which the requester's text is inert (inside a code span or fenced block it
cannot close). Accepted requests append one entry and change no other byte.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirrorbot.config import load_config
from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.errors import RequestRejectedError
from mirrorbot.integrations.github.issueform import (
    FORM_LABELS,
    MAX_BODY_BYTES,
    normalise_namespace,
    parse_form,
)
from mirrorbot.integrations.github.markdown import code_block, code_span
from mirrorbot.integrations.github.request import github_output_lines
from tests.support.world import World, write_config

UNREACHABLE_MIRROR = "127.0.0.1:9"  # the discard port: a request never talks to the mirror
_UNSET_OK = {"MIRRORBOT_TEST_UNSET_USER": "u", "MIRRORBOT_TEST_UNSET_PASSWORD": "p"}


def form(
    namespace: str,
    images: str = "_No response_",
    include: str = "_No response_",
    note: str = "_No response_",
    *,
    newline: str = "\n",
) -> str:
    """An issue-form body exactly as GitHub renders one."""
    sections = [
        ("Upstream namespace", namespace),
        ("Images", images),
        ("Include tag regexes", include),
        ("Note", note),
    ]
    text = "\n\n".join(f"### {label}\n\n{value}" for label, value in sections)
    return text.replace("\n", newline)


@dataclass
class Site:
    """A request's world: a config in a temp dir, the upstream registry, a namespace prefix."""

    tmp: Path
    registry: LocalRegistry
    ns: str
    config: Path

    @property
    def host(self) -> str:
        return self.registry.host

    def body(self, text: str | bytes, name: str = "issue-body.md") -> Path:
        path = self.tmp / name
        if isinstance(text, str):
            path.write_text(text, encoding="utf-8", newline="")
        else:
            path.write_bytes(text)
        return path

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("MIRRORBOT_", "GITHUB_"))
        }
        environment["HOME"] = str(self.tmp / "home")
        environment.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "mirrorbot", "request", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=self.tmp,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def request(
        self, text: str | bytes, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run("--issue-file", str(self.body(text)), *args, env=env)

    def seed(self, repository: str, tag: str, key: str | None = None) -> None:
        image = ImageFactory(key or f"{self.ns}/{repository}:{tag}").image(repository)
        with Seeder(self.registry.url) as seeder:
            seeder.push(f"{self.ns}/{repository}", tag, image)


def config_text(host: str, ns: str) -> str:
    return f"""\
# Mirror requests: test configuration.
mirror:
  registry: {UNREACHABLE_MIRROR}    # never contacted by a request
  namespace: mirrored               # where everything lands
  name: "{{repo}}"
  separator: "_"

state:
  repo: .
  path: state

defaults:
  mutable: ['latest']   # quoted on purpose: must stay quoted

namespaces:
  # The one namespace mirrored so far: "pause" is its mirror name.
  - source: {host}/{ns}/existing
    list: images
    images: [pause]     # flow style inside an item stays as it is

  # (nothing else yet)

requests:
  allowed_registries:
    - {host}
    - gcr.io
registries:
  {host}:
    insecure: true
  docker.io:
    username: ${{MIRRORBOT_TEST_UNSET_USER}}      # not set in the request job
    password: ${{MIRRORBOT_TEST_UNSET_PASSWORD}}
# end of file comment
"""


@pytest.fixture
def site(tmp_path: Path, source_registry: LocalRegistry, ns: str) -> Site:
    config = tmp_path / "mirrorbot.yaml"
    config.write_text(config_text(source_registry.host, ns), encoding="utf-8")
    return Site(tmp_path, source_registry, ns, config)


_SPAN = re.compile(r"`[^`\n]*`")


def assert_inert(reply: str) -> None:
    """Outside code spans and fenced blocks, no trace of the hostile input."""
    prose = re.sub(r"(?ms)^(`{3,})text\n.*?^\1$", "", reply)
    assert "```" not in prose, reply  # every fence was closed by its own, longer fence
    prose = _SPAN.sub("", prose)
    for marker in ("${{", "{{", "$(", "`", "<", "@", "PWNED", "rm -rf", "\x00"):
        assert marker not in prose, (marker, reply)


def assert_rejected(
    site: Site, result: subprocess.CompletedProcess[str], before: bytes, reason: str
) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Request not accepted" in result.stdout
    assert reason.lower() in result.stdout.lower(), result.stdout
    assert site.config.read_bytes() == before
    assert not list(site.tmp.glob(".mirrorbot.yaml.*")), "a temp config was left behind"
    assert_inert(result.stdout)


# --------------------------------------------------------------------------- parsing


def test_parse_form_as_github_renders_it() -> None:
    body = form(
        "quay.io/coreos",
        images="etcd\nflannel, dex\n- etcd",
        include="v\\d+\\.\\d+\\.\\d+\nlatest",
        note="Needed behind the firewall.\n\n### Not a field\n\nignored",
        newline="\r\n",
    )
    parsed = parse_form(body)
    assert parsed.namespace == "quay.io/coreos"
    assert parsed.images == ("etcd", "flannel", "dex")
    assert parsed.include == ("v\\d+\\.\\d+\\.\\d+", "latest")
    assert parsed.note == "Needed behind the firewall."


def test_parse_form_no_response_and_case_insensitive_labels() -> None:
    body = (
        "Some preamble\n\n###   UPSTREAM   namespace\n\ngcr.io/x\n\n### images\n\n_No response_\n"
    )
    parsed = parse_form(body)
    assert parsed.namespace == "gcr.io/x"
    assert parsed.images == ()
    assert parsed.include == ()
    assert parsed.note == ""


def test_the_issue_form_uses_the_labels_the_parser_reads() -> None:
    from ruamel.yaml import YAML

    template = Path(__file__).resolve().parents[2] / ".github/ISSUE_TEMPLATE/mirror-request.yml"
    document = YAML(typ="safe").load(template.read_text(encoding="utf-8"))
    labels = {
        item["id"]: item["attributes"]["label"]
        for item in document["body"]
        if item["type"] in ("input", "textarea")
    }
    assert labels == FORM_LABELS
    assert "mirror-request" in document["labels"]
    namespace = next(item for item in document["body"] if item.get("id") == "namespace")
    assert namespace["type"] == "input"
    assert namespace["validations"]["required"] is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("quay.io/coreos", ("quay.io", "coreos")),
        ("  https://Quay.IO/coreos/  ", ("quay.io", "coreos")),
        ("HTTP://gcr.io/google-containers//", ("gcr.io", "google-containers")),
        ("index.docker.io/bitnami", ("docker.io", "bitnami")),
        ("bitnami", ("docker.io", "bitnami")),
        ("registry.k8s.io", ("registry.k8s.io", "")),
    ],
)
def test_normalise_namespace(raw: str, expected: tuple[str, str]) -> None:
    assert normalise_namespace(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "gcr.io/../../etc/passwd",
        "gcr.io/a/./b",
        "quay.io/CoreOS",
        "quay.io/coreos;rm -rf /",
        "quay.io/$(touch PWNED)",
        "quay.io/`touch PWNED`",
        "${{ github.token }}",
        "{{ 7*7 }}",
        "quay.io/a\u202eb",
        "quay.io/a\u200bb",
        "quay.io/a\tb",
        "x" * 300,
    ],
)
def test_normalise_namespace_hostile(raw: str) -> None:
    with pytest.raises(RequestRejectedError):
        normalise_namespace(raw)


def test_code_span_neutralises_backticks_control_characters_and_length() -> None:
    span = code_span("a`b``c\n$(x)\x00" + "y" * 200)
    assert span.startswith("`")
    assert span.endswith("`")
    assert span.count("`") == 2
    assert "\n" not in span
    assert "\x00" not in span
    assert len(span) <= 100 + 3
    assert span.endswith("…`")
    assert code_span("") == "(empty)"


def test_code_block_fence_outlasts_the_content() -> None:
    block = code_block("evil ```` fence\n~~~~~\nend")
    fence = block.split("text\n", 1)[0]
    assert set(fence) == {"`"}
    assert len(fence) == 5
    assert block.endswith("\n" + fence)


def test_github_output_lines_cannot_inject_a_second_output() -> None:
    from mirrorbot.integrations.github.request import RequestOutcome

    outcome = RequestOutcome(False, "reply", "quay.io/x\naccepted=true\r")
    lines = github_output_lines(outcome).splitlines()
    assert lines[0] == "accepted=false"
    assert lines[1] == "namespace=quay.io/xacceptedtrue"
    assert [line.partition("=")[0] for line in lines] == [
        "accepted",
        "namespace",
        "open_pull_request",
        "dry_run",
    ]


# --------------------------------------------------------------------------- hostile bodies


HOSTILE_NAMESPACES = {
    "command substitution": "$(touch PWNED)",
    "backticks": "`touch PWNED`",
    "shell chain": '"; touch PWNED; echo "',
    "rm": "quay.io/x; rm -rf /",
    "github expression": "${{ github.token }}",
    "secrets expression": "${{ secrets.DOCKERHUB_TOKEN }}",
    "template": "{{ config.__class__ }}",
    "newline": "quay.io/coreos\nquay.io/other",
    "path traversal": "quay.io/../../../etc/passwd",
    "dot segment": "quay.io/coreos/./etcd",
    "html": "<img src=x onerror=alert(1)>",
    "mention": "@octocat please",
    "markdown link": "[click](https://evil.example)",
    "bidi override": "quay.io/core\u202eos",
    "very long": "quay.io/" + "a/" * 200,
}


@pytest.mark.parametrize("namespace", HOSTILE_NAMESPACES.values(), ids=HOSTILE_NAMESPACES.keys())
def test_hostile_namespaces_are_rejected_inertly(site: Site, namespace: str) -> None:
    before = site.config.read_bytes()
    result = site.request(form(namespace))
    assert_rejected(site, result, before, "")
    assert not (site.tmp / "PWNED").exists()
    assert "Your input: `" in result.stdout or "section" in result.stdout


def test_hostile_body_with_expressions_everywhere(site: Site) -> None:
    before = site.config.read_bytes()
    body = form(
        "${{ github.event.issue.title }}",
        images="$(id)\n`id`",
        include="${{ secrets.GITHUB_TOKEN }}",
        note="<script>alert(1)</script> @everyone",
    )
    result = site.request(body)
    assert_rejected(site, result, before, "spaces or line breaks")
    assert "`${{ github.event.issue.title }}`" in result.stdout  # quoted, inside a code span


def test_hostile_bodies_of_a_megabyte_are_refused_unread(site: Site) -> None:
    before = site.config.read_bytes()
    result = site.request(form("quay.io/coreos", note="A" * (1024 * 1024)))
    assert_rejected(site, result, before, "larger than 64 KiB")
    exact = form("quay.io/coreos", note="")
    padded = exact + " " * (MAX_BODY_BYTES + 1 - len(exact))
    assert_rejected(site, site.request(padded), before, "larger than 64 KiB")


def test_hostile_non_utf8_and_nul_bodies(site: Site) -> None:
    before = site.config.read_bytes()
    latin1 = form("quay.io/coreos", note="caf\u00e9").encode("latin-1")
    assert_rejected(site, site.request(latin1), before, "not UTF-8")
    nul = form("quay.io/core\x00os").encode()
    assert_rejected(site, site.request(nul), before, "NUL")


def test_hostile_second_namespace_smuggled_in_the_note(site: Site) -> None:
    before = site.config.read_bytes()
    body = form(f"{site.host}/{site.ns}/good", note="hi\n\n### Upstream namespace\n\nquay.io/evil")
    assert_rejected(site, site.request(body), before, "twice")


def test_hostile_secret_values_are_redacted_from_the_reply(site: Site) -> None:
    token = "ghs_0123456789abcdefSECRET"
    result = site.request(form(f"{token} please"), env={"GITHUB_TOKEN": token})
    assert result.returncode == 1
    assert token not in result.stdout
    assert "***" in result.stdout


def test_empty_or_missing_namespace(site: Site) -> None:
    before = site.config.read_bytes()
    assert_rejected(site, site.request(form("_No response_")), before, "missing or empty")
    assert_rejected(site, site.request("just some text\n"), before, "missing or empty")


# --------------------------------------------------------------------------- policy


def test_registry_not_on_the_allowlist(site: Site) -> None:
    before = site.config.read_bytes()
    result = site.request(form("quay.io/coreos"))
    assert_rejected(site, result, before, "`quay.io` is not on this mirror's allowlist")
    assert f"`{site.host}`" in result.stdout


def test_already_mirrored_even_when_written_differently(site: Site) -> None:
    before = site.config.read_bytes()
    for spelling in (f"{site.host}/{site.ns}/existing", f"HTTP://{site.host}/{site.ns}/existing/"):
        result = site.request(form(spelling))
        assert_rejected(site, result, before, "is already mirrored")


def test_whole_registry_needs_images(site: Site) -> None:
    before = site.config.read_bytes()
    assert_rejected(site, site.request(form(site.host)), before, "is a whole registry")


def test_not_listable_upstream(site: Site) -> None:
    before = site.config.read_bytes()
    result = site.request(form(f"{site.host}/{site.ns}/nothing-here"))
    assert_rejected(
        site,
        result,
        before,
        f"{site.host}/{site.ns}/nothing-here: lists no repositories: check the name or set `list:`",
    )


def test_requested_images_that_do_not_exist(site: Site) -> None:
    site.seed("app/web", "v1")
    before = site.config.read_bytes()
    result = site.request(form(f"{site.host}/{site.ns}/app", images="web, ghost"))
    assert_rejected(site, result, before, "`ghost`")


def test_requested_images_none_of_which_exist(site: Site) -> None:
    """The listing fails as empty; the reply still names the missing images."""
    before = site.config.read_bytes()
    result = site.request(form(f"{site.host}/{site.ns}/app", images="ghost, phantom"))
    assert_rejected(site, result, before, "2 of the requested images have no tags upstream")
    assert "`phantom`" in result.stdout


def test_unreachable_registry_is_not_listable(site: Site) -> None:
    text = site.config.read_text().replace(
        f"    - {site.host}\n", f"    - {site.host}\n    - 127.0.0.1:9\n"
    )
    site.config.write_text(text)
    before = site.config.read_bytes()
    result = site.request(form("127.0.0.1:9/some/namespace"))
    assert_rejected(site, result, before, "could not be listed upstream")


def test_collides_with_a_configured_mirror_name(site: Site) -> None:
    site.seed("other/pause", "3.9")  # would become mirrored/pause, taken by .../existing/pause
    site.seed("other/unique", "1.0")
    before = site.config.read_bytes()
    result = site.request(form(f"{site.host}/{site.ns}/other"))
    assert_rejected(site, result, before, "already taken")
    assert f"`{UNREACHABLE_MIRROR}/mirrored/pause`" in result.stdout
    assert f"`{site.host}/{site.ns}/existing/pause`" in result.stdout


def test_collides_with_a_mirror_name_recorded_in_state(site: Site) -> None:
    site.seed("third/etcd", "3.5")
    state = site.tmp / "state" / site.host / f"{site.ns}" / "retired.json"
    state.parent.mkdir(parents=True)
    state.write_text(
        json.dumps(
            {
                "version": 1,
                "source": f"{site.host}/{site.ns}/retired",
                "mirror": f"{UNREACHABLE_MIRROR}/mirrored",
                "images": {"etcd": {"target": f"{UNREACHABLE_MIRROR}/mirrored/etcd", "tags": {}}},
            }
        )
    )
    before = site.config.read_bytes()
    result = site.request(form(f"{site.host}/{site.ns}/third"))
    assert_rejected(site, result, before, "already taken")
    assert f"`{site.host}/{site.ns}/retired/etcd`" in result.stdout


@pytest.mark.parametrize(
    ("include", "named"),
    [
        ("(?!rc)v.*", "negative look-ahead `(?!…)` is not supported: tag regexes use RE2 syntax"),
        ("v.*(?<=\\d)", "look-behind `(?<=…)` is not supported"),
        ("(v)\\d+\\1", "backreference `\\1` is not supported"),
        ("v\\d++", "possessive quantifier `++` is not supported"),
    ],
)
def test_include_regex_re2_lacks_is_a_rejection_naming_it(
    site: Site, include: str, named: str
) -> None:
    site.seed("regex/app", "v1")
    before = site.config.read_bytes()
    result = site.request(form(f"{site.host}/{site.ns}/regex", include=include))
    assert_rejected(site, result, before, "not make a valid namespace entry")
    assert named in result.stdout


def test_include_regex_matching_nothing(site: Site) -> None:
    site.seed("none/app", "v1")
    before = site.config.read_bytes()
    result = site.request(form(f"{site.host}/{site.ns}/none", include="v9\\..*"))
    assert_rejected(site, result, before, "matches the include regexes")


# --------------------------------------------------------------------------- acceptance


def test_listable_namespace_is_added_preserving_every_other_byte(site: Site) -> None:
    site.seed("fresh/app", "v1.0")
    site.seed("fresh/app", "latest")
    site.seed("fresh/tools/cli", "v2.1")
    before = site.config.read_text(encoding="utf-8")
    output = site.tmp / "github-output"
    result = site.request(
        form(f"https://{site.host}/{site.ns}/fresh/", include="v\\d+\\..*\nlatest"),
        env={"GITHUB_OUTPUT": str(output)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Request accepted" in result.stdout
    source = f"{site.host}/{site.ns}/fresh"
    assert f"`{source}/tools/cli` | `{UNREACHABLE_MIRROR}/mirrored/tools_cli`" in result.stdout
    assert "3 tags, 3 of them selected" in result.stdout

    after = site.config.read_text(encoding="utf-8")
    entry = f"  - source: {source}\n    include:\n      - v\\d+\\..*\n      - latest\n"
    # One entry, appended to namespaces: (after the comments that close the list);
    # every other byte, comments and quotes included, is as it was.
    assert after == before.replace("\nrequests:\n", "\n" + entry + "requests:\n", 1)

    config = load_config(site.config, _UNSET_OK)
    plans = {plan.source: plan for plan in config.namespace_plans()}
    assert plans[source].strategy == "catalog"
    assert plans[source].tag_selected("v1.0")
    assert not plans[source].tag_selected("edge")
    assert output.read_text() == (
        f"accepted=true\nnamespace={source}\nopen_pull_request=false\ndry_run=false\n"
    )

    again = site.request(form(source))
    assert_rejected(site, again, site.config.read_bytes(), "is already mirrored")


def test_images_request_is_added_with_its_list(site: Site) -> None:
    site.seed("pick/one", "1")
    site.seed("pick/two", "2")
    site.seed("pick/three", "3")
    before = site.config.read_text(encoding="utf-8")
    source = f"{site.host}/{site.ns}/pick"
    result = site.request(form(source, images=f"one\n{source}/two"))
    assert result.returncode == 0, result.stdout + result.stderr
    entry = f"  - source: {source}\n    images:\n      - one\n      - two\n"
    assert site.config.read_text(encoding="utf-8") == before.replace(
        "\nrequests:\n", "\n" + entry + "requests:\n", 1
    )
    plan = next(
        p for p in load_config(site.config, _UNSET_OK).namespace_plans() if p.source == source
    )
    assert plan.strategy == "images"
    assert plan.images == ("one", "two")


def test_dry_run_accepts_but_writes_nothing(site: Site) -> None:
    site.seed("dry/app", "1")
    before = site.config.read_bytes()
    result = site.request(form(f"{site.host}/{site.ns}/dry"), "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run" in result.stdout
    assert site.config.read_bytes() == before


def test_allow_flag_extends_the_allowlist(site: Site) -> None:
    text = site.config.read_text().replace(f"    - {site.host}\n", "")
    site.config.write_text(text)
    site.seed("flag/app", "1")
    body = form(f"{site.host}/{site.ns}/flag")
    assert site.request(body, "--dry-run").returncode == 1
    result = site.request(body, "--dry-run", "--allow", site.host)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_request_mode_is_reported(site: Site) -> None:
    text = site.config.read_text().replace("requests:\n", "requests:\n  open_pull_request: true\n")
    site.config.write_text(text)
    site.seed("pr/app", "1")
    output = site.tmp / "out"
    result = site.request(form(f"{site.host}/{site.ns}/pr"), env={"GITHUB_OUTPUT": str(output)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pull request" in result.stdout
    assert "open_pull_request=true\n" in output.read_text()


# --------------------------------------------------------------------------- maintainers' errors


def test_a_config_that_cannot_be_edited_faithfully_is_left_alone(site: Site) -> None:
    site.seed("flow/app", "1")
    site.config.write_text(
        f"mirror: {{registry: {UNREACHABLE_MIRROR}, namespace: m}}\n"
        f"namespaces: [{{source: {site.host}/{site.ns}/existing}}]\n"
        f"requests: {{allowed_registries: ['{site.host}']}}\n"
    )
    before = site.config.read_bytes()
    result = site.request(form(f"{site.host}/{site.ns}/flow"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "by hand" in result.stderr
    assert result.stdout == ""
    assert site.config.read_bytes() == before


def test_usage_errors_exit_2(site: Site) -> None:
    missing = site.run("--issue-file", str(site.tmp / "nope.md"))
    assert missing.returncode == 2
    assert "nope.md" in missing.stderr
    site.config.write_text("mirror: {}\n")
    broken = site.request(form("quay.io/coreos"))
    assert broken.returncode == 2
    assert "mirrorbot.yaml" in broken.stderr
    no_flag = site.run()
    assert no_flag.returncode == 2


# --------------------------------------------------------------------------- ReDoS (issue 11)

REDOS = "\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*!"  # hours per 128-character tag in Python's re


@pytest.mark.hostile("tag regexes")
def test_backtracking_include_is_accepted_then_synced_in_linear_time(world: World) -> None:
    up = world.upstream.host
    f = ImageFactory(world.ns)
    write_config(world, source=f"{up}/{world.ns}/existing")
    world.config.write_text(world.config.read_text() + f"requests:\n  allowed_registries: [{up}]\n")
    world.seed("existing/app", "v0", f.image("existing"))
    world.seed("redos/tool", "v1", f.image("v1"))
    world.seed("redos/tool", "a" * 128, f.image("long"))
    body = world.tmp / "issue.md"
    body.write_text(form(f"{up}/{world.ns}/redos", include=f"{REDOS}\nv1"), encoding="utf-8")
    # Bounded runs: with a backtracking engine either step would spin for hours.
    request = subprocess.run(
        world.command("request", "--issue-file", str(body)),
        capture_output=True,
        text=True,
        env=world.environment(),
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert request.returncode == 0, request.stdout + request.stderr
    assert "Request accepted" in request.stdout
    assert "2 tags, 1 of them selected" in request.stdout
    assert REDOS in world.config.read_text()
    sync = subprocess.run(
        world.command("sync"),
        capture_output=True,
        text=True,
        env=world.environment(),
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert sync.returncode == 0, sync.stdout + sync.stderr
    state = json.loads(world.remote_file(f"state/{up}/{world.ns}/redos.json"))
    assert sorted(state["images"]["tool"]["tags"]) == ["v1"]
