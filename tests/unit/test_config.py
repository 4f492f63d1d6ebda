"""mirrorbot.yaml: the DESIGN.md example loads; every mistake names file, line and key.

Error cases mark the line the error must point at with ``# <--``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import ValidationError

from mirrorbot.config import (
    MAX_CONFIG_BYTES,
    Config,
    Filters,
    MirrorSettings,
    NamespaceSettings,
    RegistrySettings,
    ResolvedNamespace,
    config_json_schema,
    credentials_from_config,
    load_config,
    main,
    parse_config,
    yamlio,
)
from mirrorbot.engine.registry.credentials import Credential
from mirrorbot.errors import ConfigError, NameCollisionError, format_key

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hunter2-Very-Secret-Token"
ENV = {"DOCKERHUB_USERNAME": "gcrxio-bot", "DOCKERHUB_TOKEN": SECRET}

# DESIGN.md section 3, verbatim.
EXAMPLE = """\
mirror:
  registry: docker.io            # target registry
  namespace: gcrxio              # target user / org
  name: "{repo}"                 # target repo name; placeholders {registry} {namespace} {repo}
  separator: "_"                 # replaces "/" left in the rendered name (Docker Hub has no nesting)
state:
  repo: .                        # git metadata repo: "." (this repo), a path, or a clone URL
  path: state                    # folder inside it
  branch: main
defaults:                        # per-namespace keys override these
  include: []                    # tag regexes; empty = all
  exclude: []
  platforms: []                  # e.g. [linux/amd64, linux/arm64]; empty = all
  mutable: ["latest"]            # tags whose digest is re-checked every run
  signatures: true               # also copy cosign sha256-<hex>.sig/.att/.sbom tags
namespaces:
  - source: gcr.io/google-containers
    list: gcr                    # catalog | gcr | dockerhub | images (default: guessed from the host)
  - source: registry.k8s.io
    list: images
    images: [pause, kube-apiserver]
registries:
  docker.io:
    username: ${DOCKERHUB_USERNAME}   # ${VAR} / $VAR expand from the environment
    password: ${DOCKERHUB_TOKEN}
  myregistry.example:
    insecure: true
"""

MINIMAL = """\
mirror:
  namespace: gcrxio
namespaces:
  - source: quay.io/coreos
"""


def write(tmp_path: Path, text: str, name: str = "mirrorbot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, environ: Mapping[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), ENV if environ is None else environ)


def marked_line(text: str) -> int:
    lines = [n for n, line in enumerate(textwrap.dedent(text).splitlines(), 1) if "# <--" in line]
    assert len(lines) == 1, "mark exactly one line with # <--"
    return lines[0]


def error_for(tmp_path: Path, text: str, environ: Mapping[str, str] | None = None) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV if environ is None else environ)
    error = caught.value
    assert error.path == str(path)
    assert str(error).startswith(f"{path}:")
    assert SECRET not in str(error)
    assert SECRET not in repr(error.args)
    return error


def assert_error(
    tmp_path: Path, text: str, key: str, fragment: str, environ: Mapping[str, str] | None = None
) -> ConfigError:
    error = error_for(tmp_path, text, environ)
    assert (error.line, error.key) == (marked_line(text), key), str(error)
    assert fragment in error.message, str(error)
    assert str(error) == (
        f"{error.path}:{error.line}: {key}: {error.message}"
        if key
        else f"{error.path}:{error.line}: {error.message}"
    )
    return error


# --------------------------------------------------------------------------- the example


def test_design_example_loads_and_resolves(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    config = load_config(path, ENV)
    assert config.source_path == path
    assert config.mirror == MirrorSettings(namespace="gcrxio")
    assert config.state.path == "state"
    assert config.defaults == Filters()
    gcr, k8s = config.namespace_plans()
    assert (gcr.source, gcr.registry, gcr.path, gcr.strategy, gcr.images) == (
        "gcr.io/google-containers",
        "gcr.io",
        "google-containers",
        "gcr",
        (),
    )
    assert (k8s.source, k8s.registry, k8s.path, k8s.strategy, k8s.images) == (
        "registry.k8s.io",
        "registry.k8s.io",
        "",
        "images",
        ("pause", "kube-apiserver"),
    )
    assert k8s.upstream("pause") == "registry.k8s.io/pause"
    assert k8s.mirror_repository("pause") == "gcrxio/pause"
    assert gcr.mirror_repository("etcd/backup") == "gcrxio/etcd_backup"
    assert gcr.is_mutable("latest")
    assert gcr.signatures
    # The config keeps ${VAR} as written: a command expands them when it needs them.
    assert config.registries["docker.io"].username == "${DOCKERHUB_USERNAME}"
    assert config.registries["docker.io"].password == "${DOCKERHUB_TOKEN}"
    assert credentials_from_config(config, ENV)["docker.io"] == Credential("gcrxio-bot", SECRET)
    assert config.registries["myregistry.example"].insecure
    assert SECRET not in repr(config)
    assert SECRET not in str(config)


def test_credentials_from_config(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE)
    assert credentials_from_config(config, ENV) == {"docker.io": Credential("gcrxio-bot", SECRET)}


def test_registry_keys_are_normalised(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        MINIMAL
        + "registries:\n  index.docker.io:\n    username: u\n    password: $DOCKERHUB_TOKEN\n"
        + "  GHCR.io:\n    identity_token: ${DOCKERHUB_TOKEN}\n",
    )
    assert set(config.registries) == {"docker.io", "ghcr.io"}
    assert credentials_from_config(config, ENV) == {
        "docker.io": Credential("u", SECRET),
        "ghcr.io": Credential(identity_token=SECRET),
    }


def test_env_expansion_only_under_registries(tmp_path: Path) -> None:
    # Outside registries "${VAR}" is plain text, which here makes an invalid name.
    error = error_for(
        tmp_path,
        "mirror:\n  namespace: gcrxio\n  name: x${DOCKERHUB_USERNAME}{repo}\n"
        "namespaces:\n  - source: quay.io/coreos\n",
    )
    assert "x${DOCKERHUB_USERNAME}" in error.message
    # "$$" is a literal dollar inside registries.
    config = load(
        tmp_path,
        MINIMAL + "registries:\n  quay.io:\n    username: a$$b\n    password: p\n",
        {},
    )
    assert credentials_from_config(config, {})["quay.io"].username == "a$b"


def test_parse_config_text_and_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.source_path is None
    (plan,) = config.namespace_plans()
    assert plan.strategy == "quay"  # Quay's catalog is empty for anonymous users
    assert plan.hub_api == "https://hub.docker.com"
    assert plan.name_template == "{repo}"
    assert plan.separator == "_"
    assert plan.mirror_registry == "docker.io"
    assert plan.mirror_namespace == "gcrxio"
    assert config.registries == {}


def test_values_are_frozen() -> None:
    config = parse_config(MINIMAL)
    with pytest.raises(ValidationError):
        config.mirror.namespace = "other"
    (plan,) = config.namespace_plans()
    with pytest.raises(AttributeError):
        plan.source = "x"  # type: ignore[misc]


def test_registry_settings_repr_hides_secrets() -> None:
    settings = RegistrySettings(username="u", password=SECRET, identity_token=SECRET)
    assert SECRET not in repr(settings)
    assert "u" in repr(settings)


@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.hostile("config")
@pytest.mark.parametrize(
    ("source", "strategy", "normalised"),
    [
        ("gcr.io/google-containers", "gcr", "gcr.io/google-containers"),
        ("eu.gcr.io/project", "gcr", "eu.gcr.io/project"),
        ("us-docker.pkg.dev/project/repo", "gcr", "us-docker.pkg.dev/project/repo"),
        ("europe-west1.pkg.dev/project", "gcr", "europe-west1.pkg.dev/project"),
        ("docker.io/bitnami", "dockerhub", "docker.io/bitnami"),
        ("index.docker.io/bitnami", "dockerhub", "docker.io/bitnami"),
        ("bitnami", "dockerhub", "docker.io/bitnami"),
        ("quay.io/coreos", "quay", "quay.io/coreos"),
        ("localhost:5000/team", "catalog", "localhost:5000/team"),
        ("myregistry.example", "catalog", "myregistry.example"),
        ("GHCR.io/owner", "catalog", "ghcr.io/owner"),
    ],
)
def test_strategy_guessed_from_host(source: str, strategy: str, normalised: str) -> None:
    config = parse_config(MINIMAL.replace("quay.io/coreos", source))
    (plan,) = config.namespace_plans()
    assert (plan.strategy, plan.source) == (strategy, normalised)


def test_images_list_without_list_means_images() -> None:
    config = parse_config(MINIMAL + "    images: [pause, etcd/backup]\n")
    (plan,) = config.namespace_plans()
    assert plan.strategy == "images"
    assert plan.images == ("pause", "etcd/backup")


def test_namespace_overrides_replace_defaults() -> None:
    text = """\
    mirror:
      namespace: gcrxio
    defaults:
      include: ['v\\d+(\\.\\d+)*']
      exclude: ['.*-rc\\d*']
      platforms: [linux/amd64]
      mutable: [latest, 'v\\d+']
      signatures: false
    namespaces:
      - source: quay.io/a
      - source: quay.io/b
        include: []
        exclude: ['v1\\.0']
        platforms: [linux/arm64/v8, linux/arm/v7]
        mutable: []
        signatures: true
        name: "b-{repo}"
        hub_api: http://127.0.0.1:8080/
    """
    a, b = parse_config(textwrap.dedent(text)).namespace_plans()
    assert a.tag_selected("v1.2.3")
    assert not a.tag_selected("v1.2.3-rc1")
    assert not a.tag_selected("latest")
    assert not a.tag_selected("xv1")  # full match, not search
    assert a.is_mutable("latest")
    assert a.is_mutable("v1")
    assert not a.is_mutable("latest-foo")
    assert not a.is_mutable("v1.2")
    assert a.platforms == ("linux/amd64",)
    assert not a.signatures
    assert a.name_template == "{repo}"
    assert b.tag_selected("latest")
    assert b.tag_selected("v1.0.1")
    assert not b.tag_selected("v1.0")
    assert not b.is_mutable("latest")
    assert b.platforms == ("linux/arm64/v8", "linux/arm/v7")
    assert b.signatures
    assert b.mirror_repository("x") == "gcrxio/b-x"
    assert b.hub_api == "http://127.0.0.1:8080"


def test_dockerhub_strategy_with_custom_hub_api() -> None:
    config = parse_config(
        MINIMAL.replace("quay.io/coreos", "127.0.0.1:5000/team")
        + "    list: dockerhub\n    hub_api: http://127.0.0.1:9000\n"
    )
    (plan,) = config.namespace_plans()
    assert (plan.strategy, plan.hub_api) == ("dockerhub", "http://127.0.0.1:9000")


def test_slash_separator_on_a_registry_with_nesting() -> None:
    config = parse_config(
        "mirror:\n  registry: ghcr.io\n  namespace: org/mirror\n  name: '{namespace}/{repo}'\n"
        "  separator: /\nnamespaces:\n  - source: quay.io/coreos\n    images: [etcd/backup]\n"
    )
    (plan,) = config.namespace_plans()
    assert plan.mirror_repository("etcd/backup") == "org/mirror/coreos/etcd/backup"


def test_collisions_avoided_by_namespace_template() -> None:
    text = (
        "mirror:\n  namespace: gcrxio\n  name: '{namespace}_{repo}'\nnamespaces:\n"
        "  - source: gcr.io/a\n    images: [pause]\n  - source: quay.io/b\n    images: [pause]\n"
    )
    names = [p.mirror_repository("pause") for p in parse_config(text).namespace_plans()]
    assert names == ["gcrxio/a_pause", "gcrxio/b_pause"]


def test_resolved_namespace_can_be_built_directly() -> None:
    plan = ResolvedNamespace(
        source="quay.io/b",
        registry="quay.io",
        path="b",
        strategy="catalog",
        images=(),
        hub_api="https://hub.docker.com",
        include=(),
        exclude=(),
        platforms=(),
        mutable=(),
        signatures=True,
        name_template="{repo}",
        separator="_",
    )
    assert plan.tag_selected("anything")
    assert not plan.is_mutable("latest")


def test_config_built_in_python_is_validated_too() -> None:
    config = Config(
        mirror=MirrorSettings(namespace="m"),
        namespaces=(NamespaceSettings(source="gcr.io/a"),),
    )
    assert config.namespace_plans()[0].strategy == "gcr"
    with pytest.raises(ConfigError, match="at least one namespace"):
        Config(mirror=MirrorSettings(namespace="m"), namespaces=())


# --------------------------------------------------------------------------- errors


@pytest.mark.hostile("config")
def test_not_yaml(tmp_path: Path) -> None:
    text = """\
    mirror:
      namespace: [gcrxio
    namespaces: []  # <--
    """
    assert_error(tmp_path, text, "", "not valid YAML")


@pytest.mark.hostile("config")
def test_not_yaml_tab(tmp_path: Path) -> None:
    text = "mirror:\n\tnamespace: x  # <--\n"
    assert_error(tmp_path, text, "", "not valid YAML")


@pytest.mark.hostile("config")
def test_yaml_error_does_not_quote_the_line(tmp_path: Path) -> None:
    text = f"""\
    mirror:
      namespace: gcrxio
    registries:
      docker.io:
        password: {SECRET}: oops  # <--
    """
    assert_error(tmp_path, text, "", "not valid YAML")


@pytest.mark.hostile("config")
def test_duplicate_key_does_not_quote_values(tmp_path: Path) -> None:
    text = f"""\
    mirror:
      namespace: gcrxio
    registries:
      docker.io:
        password: {SECRET}
        password: {SECRET}x  # <--
    """
    assert_error(tmp_path, text, "", "duplicate key 'password'")


@pytest.mark.hostile("config")
def test_multiple_documents(tmp_path: Path) -> None:
    text = MINIMAL + "---  # <--\nmirror: {}\n"
    assert_error(tmp_path, text, "", "single document")


@pytest.mark.parametrize(
    ("text", "kind"), [("- a  # <--\n", "list"), ("just text  # <--\n", "string")]
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    assert_error(tmp_path, text, "", f"not a {kind}")


def test_empty_file(tmp_path: Path) -> None:
    assert_error(tmp_path, "# nothing here  # <--\n", "", "empty")


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (MINIMAL + "namespace: x  # <--\n", "namespace", "did you mean 'namespaces'?"),
        (
            "mirror:\n  namesapce: gcrxio  # <--\nnamespaces:\n  - source: quay.io/a\n",
            "mirror.namesapce",
            "did you mean 'namespace'?",
        ),
        (
            MINIMAL + "  - source: quay.io/b\n    inclde: [x]  # <--\n",
            "namespaces[1].inclde",
            "unknown key 'inclde'; did you mean 'include'?",
        ),
        (
            MINIMAL + "defaults:\n  platform: []  # <--\n",
            "defaults.platform",
            "did you mean 'platforms'?",
        ),
        (
            MINIMAL + "state:\n  folder: x  # <--\n",
            "state.folder",
            "(allowed: branch, path, repo)",
        ),
        (
            MINIMAL + "registries:\n  docker.io:\n    pasword: ${DOCKERHUB_TOKEN}  # <--\n",
            'registries["docker.io"].pasword',
            "did you mean 'password'?",
        ),
    ],
)
def test_unknown_keys(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    assert_error(tmp_path, text, key, fragment)


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (MINIMAL + "    include: 'x'  # <--\n", "namespaces[0].include", "expected a list"),
        (MINIMAL + "defaults:\n  exclude: x  # <--\n", "defaults.exclude", "expected a list"),
        (MINIMAL + '    signatures: "yes"  # <--\n', "namespaces[0].signatures", "true or false"),
        (MINIMAL + "    signatures: yes  # <--\n", "namespaces[0].signatures", "true or false"),
        (MINIMAL + "defaults:\n  signatures: 1  # <--\n", "defaults.signatures", "true or false"),
        (MINIMAL + "state:\n  branch: 2024-01-01  # <--\n", "state.branch", "expected a string"),
        (
            MINIMAL + "    images: [pause, 1]  # <--\n",
            "namespaces[0].images[1]",
            "expected a string",
        ),
        ("mirror: gcrxio  # <--\nnamespaces:\n  - source: quay.io/a\n", "mirror", "mapping"),
        ("mirror:  # <--\n  registry: quay.io\nnamespaces: []\n", "mirror.namespace", "missing"),
        ("mirror:  # <--\n  namespace: m\n", "namespaces", "missing"),
        (MINIMAL + "    list: cat  # <--\n", "namespaces[0].list", "expected one of 'catalog'"),
        (
            MINIMAL.replace("  namespace: gcrxio", "  namespace: gcrxio\n  separator: ':'  # <--"),
            "mirror.separator",
            "expected one of '_'",
        ),
        (
            MINIMAL + "registries:\n  quay.io:\n    insecure: ${DOCKERHUB_TOKEN}  # <--\n",
            'registries["quay.io"].insecure',
            "true or false",
        ),
        (MINIMAL + "    images: [!custom x]  # <--\n", "namespaces[0].images[0]", "custom tags"),
        (MINIMAL + "1: x  # <--\n", '["1"]', "not a string"),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    assert_error(tmp_path, text, key, fragment)


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("(", "invalid regex '(': missing )"),
        ("[a-", "invalid regex"),
        ("(?=v)\\w+", "look-ahead `(?=…)` is not supported: tag regexes use RE2 syntax"),
        ("(?!rc)\\w+", "negative look-ahead `(?!…)` is not supported"),
        ("\\w+(?<=\\d)", "look-behind `(?<=…)` is not supported"),
        ("\\w+(?<!-rc)", "negative look-behind `(?<!…)` is not supported"),
        ("(v)\\d+\\1", "backreference `\\1` is not supported"),
        ("(?P<v>\\d)(?P=v)", "named backreference `(?P=name)` is not supported"),
        ("v\\d++", "possessive quantifier `++` is not supported"),
        ("(?>v|vv)\\d", "atomic group `(?>…)` is not supported"),
        ("v\\d+\\Z", "`\\Z` is not supported"),
        ("v{,3}", "write `{0,3}`"),
        ("x" * 1001, "limit is 1000"),
        ("a{1001}", "RE2 repeats at most 1000 times"),
        ("(?x) a", "verbose mode `(?x)` is not supported"),
    ],
)
def test_bad_regexes(tmp_path: Path, pattern: str, fragment: str) -> None:
    text = (
        MINIMAL
        + "    include: [ok]\n    exclude:\n      - ok\n      - "
        + json.dumps(pattern)
        + "  # <--\n"
    )
    assert_error(tmp_path, text, "namespaces[0].exclude[1]", fragment)


def test_bad_regex_in_defaults_mutable(tmp_path: Path) -> None:
    text = MINIMAL + "defaults:\n  mutable: [latest, '(?!v).*']  # <--\n"
    assert_error(tmp_path, text, "defaults.mutable[1]", "look-ahead")


@pytest.mark.parametrize("key", ["include", "exclude", "mutable"])
def test_regex_lists_are_capped(tmp_path: Path, key: str) -> None:
    patterns = ", ".join(f"v{n}" for n in range(101))
    assert_error(
        tmp_path, MINIMAL + f"    {key}: [{patterns}]  # <--\n", f"namespaces[0].{key}", "100"
    )
    parse_config(MINIMAL + f"    {key}: [{patterns.rsplit(', ', 1)[0]}]\n")


@pytest.mark.parametrize(
    ("pattern", "selected", "skipped"),
    [
        ("latest", ["latest"], ["latest1", "Latest"]),
        ("v?\\d+(\\.\\d+)*", ["1", "v1.2.3"], ["v1.", "1.2-rc"]),
        ("\\d+\\.\\d+(\\.\\d+)?(-rc\\.?\\d+)?", ["1.2", "1.2.3-rc.4"], ["1", "1.2-rc"]),
        ("(?:[a-z0-9]+[._-])*[a-z0-9]+", ["a.b-c_d"], ["a..b", "-a"]),
        ("(alpha|beta|rc)*\\d+", ["alphabeta3", "3"], ["gamma3"]),
        ("sha256-[a-f0-9]{64}\\.(sig|att|sbom)", ["sha256-" + "a" * 64 + ".sig"], ["sha256-a.sig"]),
        ("(a{2})+", ["aa", "aaaa"], ["aaa"]),
        ("((ab)+c)*", ["", "abcababc"], ["abab"]),
        (".*-(amd64|arm64)", ["v1-arm64"], ["v1-arm"]),
        ("[(]+x", ["((x"], ["x"]),
        ("\\(+x", ["(x"], ["x"]),
        ("(?i)v1\\.X", ["V1.x"], ["v1-x"]),
        ("(?P<major>\\d+)\\..*", ["1.x"], ["x.1"]),
        ("v1.*", ["v1", "v1.2"], ["xv1"]),  # full match: a prefix needs .*
        ("\\w+", ["a_1"], ["a-1", "é"]),  # \w is ASCII in RE2
        # Shapes that make a backtracking engine take exponential time are fine in RE2.
        ("(a+)+", ["aaa"], ["aab"]),
        ("(a|ab)*", ["abaab"], ["b"]),
        ("(\\d|\\w)+", ["a1"], ["a-"]),
        ("(.*a){20}", ["a" * 20], ["a" * 19]),
    ],
)
def test_valid_regexes_keep_full_match_semantics(
    pattern: str, selected: list[str], skipped: list[str]
) -> None:
    config = parse_config(MINIMAL + "    include: [" + json.dumps(pattern) + "]\n")
    (plan,) = config.namespace_plans()
    assert [tag for tag in selected if plan.tag_selected(tag)] == selected
    assert [tag for tag in skipped if plan.tag_selected(tag)] == []


# The pattern from issue 11: Python's re needs hours for one 128-character tag.
REDOS = "\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*!"
_TIMED_MATCH = """
import json, sys, time
from mirrorbot.config import parse_config
text = sys.stdin.read()
(plan,) = parse_config(text).namespace_plans()
timings = []
for length in (128, 100_000):
    tag = "a" * length
    start = time.perf_counter()
    verdicts = (plan.tag_selected(tag), plan.is_mutable(tag), plan.tag_selected(tag + "!"))
    timings.append((length, time.perf_counter() - start, verdicts))
print(json.dumps(timings))
"""


@pytest.mark.hostile("tag regexes")
def test_backtracking_regex_matches_in_linear_time() -> None:
    text = (
        MINIMAL
        + f"    include: [{json.dumps(REDOS)}]\n    exclude: [{json.dumps('(x+x+)+y')}]\n"
        + f"    mutable: [{json.dumps('(a|aa)+b')}]\n"
    )
    # A subprocess with a timeout: a backtracking engine here must fail the test, not hang it.
    result = subprocess.run(
        [sys.executable, "-c", _TIMED_MATCH],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    timings = json.loads(result.stdout)
    assert [(length, verdicts) for length, _, verdicts in timings] == [
        (128, [False, False, True]),
        (100_000, [False, False, True]),
    ]
    assert all(seconds < 1.0 for _, seconds, _ in timings), timings


@pytest.mark.parametrize(
    "platform", ["linux", "Linux/AMD64", "linux/amd64/v8/x", "linux/", "/amd64"]
)
def test_bad_platforms(tmp_path: Path, platform: str) -> None:
    text = (
        MINIMAL
        + "defaults:\n  platforms:\n    - linux/amd64\n    - "
        + json.dumps(platform)
        + "  # <--\n"
    )
    assert_error(tmp_path, text, "defaults.platforms[1]", "os/arch[/variant]")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("gcr.io/Google-Containers", "lowercase"),
        ("gcr.io/google-containers:latest", "expected registry/path"),
        ("gcr.io/", "nothing after the '/'"),
        ("quay.io//coreos", "expected registry/path"),
        ("-bad.io/x", "invalid registry host"),
        (" quay.io/a", "without spaces"),
        ("Bitnami", "lowercase"),
    ],
)
def test_invalid_sources(tmp_path: Path, source: str, fragment: str) -> None:
    text = "mirror:\n  namespace: m\nnamespaces:\n  - source: " + json.dumps(source) + "  # <--\n"
    assert_error(tmp_path, text, "namespaces[0].source", fragment)


@pytest.mark.parametrize(
    ("namespace", "fragment"),
    [("Gcrxio", "lowercase"), ("gcr xio", "repository components"), ("a/b", "without '/'")],
)
def test_invalid_mirror_namespace(tmp_path: Path, namespace: str, fragment: str) -> None:
    text = (
        "mirror:\n  namespace: "
        + json.dumps(namespace)
        + "  # <--\nnamespaces:\n  - source: quay.io/a\n"
    )
    assert_error(tmp_path, text, "mirror.namespace", fragment)


def test_invalid_mirror_registry(tmp_path: Path) -> None:
    text = (
        "mirror:\n  registry: gcrxio  # <--\n  namespace: m\nnamespaces:\n  - source: quay.io/a\n"
    )
    assert_error(tmp_path, text, "mirror.registry", "not a registry host")


def test_slash_separator_refused_on_docker_hub(tmp_path: Path) -> None:
    text = "mirror:\n  namespace: m\n  separator: /  # <--\nnamespaces:\n  - source: quay.io/a\n"
    assert_error(tmp_path, text, "mirror.separator", "no nested repositories")


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{image}", "unknown placeholder {image}"),
        ("{repo:x}", "no format spec"),
        ("{namespace}", "must contain {repo}"),
        ("Mirror_{repo}", "lowercase"),
        ("{repo}_", "not a valid repository name"),
    ],
)
def test_invalid_mirror_name_template(tmp_path: Path, template: str, fragment: str) -> None:
    text = (
        "mirror:\n  namespace: m\n  name: " + json.dumps(template) + "  # <--\n"
        "namespaces:\n  - source: quay.io/a\n"
    )
    assert_error(tmp_path, text, "mirror.name", fragment)


def test_invalid_render_for_one_namespace_points_at_mirror_name(tmp_path: Path) -> None:
    text = """\
    mirror:
      namespace: m
      name: "{namespace}__{repo}"  # <--
    namespaces:
      - source: quay.io/a
      - source: registry.k8s.io
        images: [pause]
    """
    # An empty {namespace} takes one separator along: the second one is left leading.
    error = assert_error(tmp_path, text, "mirror.name", "'m/_pause'")
    assert "registry.k8s.io/pause" in error.message


def test_invalid_namespace_name_override(tmp_path: Path) -> None:
    text = MINIMAL + "    name: '{registry}-{namespace}'  # <--\n"
    assert_error(tmp_path, text, "namespaces[0].name", "must contain {repo}")


def test_empty_namespaces(tmp_path: Path) -> None:
    text = "mirror:\n  namespace: m\nnamespaces: []  # <--\n"
    assert_error(tmp_path, text, "namespaces", "at least one namespace")


def test_duplicate_namespace_sources(tmp_path: Path) -> None:
    text = """\
    mirror:
      namespace: m
    namespaces:
      - source: docker.io/bitnami
      - source: quay.io/a
      - source: bitnami  # <--
    """
    error = assert_error(tmp_path, text, "namespaces[2].source", "listed twice")
    assert "docker.io/bitnami" in error.message
    assert "namespaces[0]" in error.message


def test_duplicate_image(tmp_path: Path) -> None:
    text = MINIMAL + "    images:\n      - a\n      - b\n      - a  # <--\n"
    assert_error(tmp_path, text, "namespaces[0].images[2]", "listed twice")


def test_images_strategy_needs_images(tmp_path: Path) -> None:
    text = MINIMAL + "    list: images  # <--\n"
    assert_error(tmp_path, text, "namespaces[0].list", "non-empty images list")
    text = MINIMAL + "    list: images\n    images: []  # <--\n"
    assert_error(tmp_path, text, "namespaces[0].images", "non-empty images list")


def test_images_only_with_images_strategy(tmp_path: Path) -> None:
    text = MINIMAL + "    list: catalog\n    images: [a]  # <--\n"
    assert_error(tmp_path, text, "namespaces[0].images", "only used with list: images")


def test_gcr_needs_a_project(tmp_path: Path) -> None:
    text = "mirror:\n  namespace: m\nnamespaces:\n  - source: gcr.io  # <--\n    list: gcr\n"
    assert_error(tmp_path, text, "namespaces[0].source", "needs a project path")


def test_dockerhub_needs_one_namespace(tmp_path: Path) -> None:
    text = "mirror:\n  namespace: m\nnamespaces:\n  - source: docker.io/a/b  # <--\n"
    assert_error(tmp_path, text, "namespaces[0].source", "exactly one Docker Hub user")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://hub.example", "not an http(s) URL"),
        ("hub.docker.com", "not an http(s) URL"),
        (f"https://user:{SECRET}@hub.example", "must not contain credentials"),
        ("https://hub.example/?x=1", "no query"),
    ],
)
def test_invalid_hub_api(tmp_path: Path, url: str, fragment: str) -> None:
    text = MINIMAL + "    hub_api: " + json.dumps(url) + "  # <--\n"
    assert_error(tmp_path, text, "namespaces[0].hub_api", fragment)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("path", "/etc/state", "relative folder"),
        ("path", "../state", "relative folder"),
        ("branch", "bad branch", "not a valid git branch"),
        ("branch", "-x", "not a valid git branch"),
        ("repo", "", "must not be empty"),
    ],
)
def test_invalid_state(tmp_path: Path, key: str, value: str, fragment: str) -> None:
    text = MINIMAL + f"state:\n  {key}: " + json.dumps(value) + "  # <--\n"
    assert_error(tmp_path, text, f"state.{key}", fragment)


@pytest.mark.hostile("config")
def test_missing_environment_variable(tmp_path: Path) -> None:
    text = """\
    mirror:
      namespace: m
    namespaces:
      - source: quay.io/a
    registries:
      docker.io:
        username: ${DOCKERHUB_USERNAME}
        password: ${DOCKERHUB_TOKEN}  # <--
    """
    error = assert_error(
        tmp_path,
        text,
        'registries["docker.io"].password',
        "environment variable DOCKERHUB_TOKEN is not set",
        environ={"DOCKERHUB_USERNAME": SECRET},
    )
    assert SECRET not in str(error)


def test_password_needs_username(tmp_path: Path) -> None:
    text = MINIMAL + "registries:\n  docker.io:\n    password: ${DOCKERHUB_TOKEN}  # <--\n"
    assert_error(tmp_path, text, 'registries["docker.io"].password', "needs a username")


def test_registry_key_must_be_a_host(tmp_path: Path) -> None:
    text = MINIMAL + "registries:\n  dockerhub:  # <--\n    insecure: true\n"
    assert_error(tmp_path, text, "registries.dockerhub", "not a registry host")


def test_registry_aliases_are_the_same_registry(tmp_path: Path) -> None:
    text = MINIMAL + "registries:\n  docker.io: {}\n  index.docker.io: {}  # <--\n"
    assert_error(tmp_path, text, 'registries["index.docker.io"]', "are the same registry")


def test_name_collision_across_namespaces(tmp_path: Path) -> None:
    text = """\
    mirror:
      namespace: gcrxio
    namespaces:
      - source: gcr.io/a
        images: [pause, etcd]
      - source: quay.io/b
        images:
          - coredns
          - pause  # <--
    """
    error = assert_error(tmp_path, text, "namespaces[1].images[1]", "both map to")
    assert isinstance(error, NameCollisionError)
    assert (error.upstream_a, error.upstream_b, error.mirror) == (
        "gcr.io/a/pause",
        "quay.io/b/pause",
        "gcrxio/pause",
    )


def test_name_collision_by_separator(tmp_path: Path) -> None:
    text = MINIMAL + "    images:\n      - etcd/backup\n      - etcd_backup  # <--\n"
    error = assert_error(tmp_path, text, "namespaces[0].images[1]", "both map to")
    assert "quay.io/coreos/etcd/backup and quay.io/coreos/etcd_backup" in error.message


def test_aliases_are_refused(tmp_path: Path) -> None:
    text = """\
    mirror:
      namespace: &ns gcrxio
    namespaces:
      - source: quay.io/a
        name: *ns  # <--
    """
    assert_error(tmp_path, text, "", "aliases")


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    lines[1] += "  # <--"
    assert_error(tmp_path, "\n".join(lines) + "\n", "", "aliases")


def test_node_count_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlio, "MAX_NODES", 16)
    text = MINIMAL + "    images: [a, b, c, d,\n      e, f, g]  # <--\n"
    assert_error(tmp_path, text, "", "more than 16 YAML nodes")


def test_file_over_one_mebibyte_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("[" * (MAX_CONFIG_BYTES + 1))  # would be a parser stress test
    with pytest.raises(ConfigError, match="at most 1048576") as caught:
        load_config(path, {})
    assert caught.value.line is None
    assert str(caught.value).startswith(f"{path}: ")
    with pytest.raises(ConfigError, match="larger than"):
        parse_config("#" * (MAX_CONFIG_BYTES + 1))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as caught:
        load_config(tmp_path / "missing.yaml", {})
    assert caught.value.path == str(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path, {})
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"mirror: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary, {})


def test_parse_config_names_the_given_file() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("mirror: 1\nnamespaces: []\n", filename="x/mirror.yaml")
    assert str(caught.value) == "x/mirror.yaml:1: mirror: expected a mapping of keys"


def test_config_error_format() -> None:
    assert str(ConfigError("m", path="f.yaml", line=3, key="a.b")) == "f.yaml:3: a.b: m"
    assert str(ConfigError("m", path="f.yaml", key="a.b")) == "f.yaml: a.b: m"
    assert str(ConfigError("m", path="f.yaml", line=3)) == "f.yaml:3: m"
    assert str(ConfigError("m", location=("namespaces", 1, "include", 0))) == (
        "namespaces[1].include[0]: m"
    )
    assert format_key(("registries", "docker.io", "password")) == 'registries["docker.io"].password'


def test_first_error_in_file_order_is_reported(tmp_path: Path) -> None:
    text = """\
    mirror:
      namespace: m
    defaults:
      signatures: maybe  # <--
    namespaces:
      - source: quay.io/a
        include: x
    """
    assert_error(tmp_path, text, "defaults.signatures", "true or false")


# --------------------------------------------------------------------------- schema


def _schema_text() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"


def test_checked_in_schema_is_current() -> None:
    checked_in = (ROOT / "mirrorbot.schema.json").read_text(encoding="utf-8")
    assert checked_in == _schema_text(), (
        "regenerate: python -m mirrorbot.config --schema > mirrorbot.schema.json"
    )


def test_schema_command_prints_the_schema() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "mirrorbot.config", "--schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert completed.stdout == _schema_text()


def test_schema_describes_every_key() -> None:
    schema = config_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "mirrorbot.yaml"
    definitions = schema["$defs"]
    assert isinstance(definitions, dict)
    for model in [schema, *definitions.values()]:
        assert model["additionalProperties"] is False
        assert model["description"]
        for name, prop in model["properties"].items():
            assert prop.get("description"), name


def _check_keys(value: object, schema: Mapping[str, object], root: Mapping[str, object]) -> None:
    """A small structural check (jsonschema is not installed): every key is declared."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        defs = root["$defs"]
        assert isinstance(defs, dict)
        schema = defs[ref.rsplit("/", 1)[1]]
    for option in schema.get("anyOf", []):  # type: ignore[attr-defined]
        if option.get("type") != "null":
            schema = option
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if isinstance(properties, dict) and key in properties:
                _check_keys(item, properties[key], root)
            else:
                assert isinstance(extra, dict), f"{key} is not in the schema"
                _check_keys(item, extra, root)
    elif isinstance(value, list):
        assert schema.get("type") == "array"
        items = schema.get("items")
        assert isinstance(items, dict)
        for item in value:
            _check_keys(item, items, root)


def test_design_example_matches_the_schema(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    data = json.loads(json.dumps(YAML(typ="safe").load(EXAMPLE)))
    schema = json.loads((ROOT / "mirrorbot.schema.json").read_text(encoding="utf-8"))
    _check_keys(data, schema, schema)
    assert set(schema["required"]) <= set(data)
    load(tmp_path, EXAMPLE)


def test_module_main_validates_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, MINIMAL, "good.yaml")
    assert main([str(good)]) == 0
    bad = write(tmp_path, MINIMAL + "bogus: 1\n", "bad.yaml")
    assert main([str(bad)]) == 2
    assert f"{bad}:5: bogus: unknown key 'bogus'" in capsys.readouterr().err
