"""Credentials: env expansion, docker config.json, real credential helper executables."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from mirrorbot.engine.registry.credentials import (
    Credential,
    CredentialStore,
    docker_config_path,
    expand_env,
    parse_user_password,
)
from mirrorbot.errors import CredentialError, MirrorbotError

PASSWORD = "pa55:w0rd-SECRET"
TOKEN = "identity-TOKEN-value"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- expand_env -----------------------------------------------------------------------------

ENV = {"USER_NAME": "alice", "PASS": "hunter2", "EMPTY": "", "DOLLAR": "$PASS"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        ("${USER_NAME}", "alice"),
        ("$USER_NAME", "alice"),
        ("${USER_NAME}:${PASS}", "alice:hunter2"),
        ("$USER_NAME:$PASS", "alice:hunter2"),
        ("x${USER_NAME}y", "xalicey"),
        ("${EMPTY}", ""),
        ("$$", "$"),
        ("$$USER_NAME", "$USER_NAME"),
        ("$${USER_NAME}", "${USER_NAME}"),
        ("$$$USER_NAME", "$alice"),
        ("$$$$", "$$"),
        ("pa$$sword", "pa$sword"),
        # Expansion is one pass: a value is never expanded again.
        ("${DOLLAR}", "$PASS"),
        # A NUL in the input is data, not an escape marker.
        ("a\0b", "a\0b"),
        ("a\0$$b", "a\0$b"),
    ],
)
def test_expand_env(value: str, expected: str) -> None:
    assert expand_env(value, ENV) == expected


def test_expand_env_takes_longest_name() -> None:
    # Not "alice_SUFFIX": the bare name runs as far as it can (and is unset here).
    with pytest.raises(CredentialError, match="not set"):
        expand_env("$USER_NAME_SUFFIX", ENV)
    assert expand_env("$USER_NAME_SUFFIX", {**ENV, "USER_NAME_SUFFIX": "x"}) == "x"
    assert expand_env("${USER_NAME}_SUFFIX", ENV) == "alice_SUFFIX"


@pytest.mark.parametrize("value", ["${MISSING}", "x-$PASS-${MISSING}-y"])
def test_expand_env_missing_variable(value: str) -> None:
    with pytest.raises(CredentialError) as info:
        expand_env(value, ENV, where="registries.ghcr.password")
    message = str(info.value)
    assert "MISSING" in message
    assert "registries.ghcr.password" in message
    for secret in ENV.values():
        if secret:
            assert secret not in message


@pytest.mark.parametrize("value", ["pa$tail42x", "$tail42x", "x-${PASS}-pa$tail42x"])
def test_expand_env_unset_bare_name_is_not_echoed(value: str) -> None:
    # "pa$tail42x" may be a literal password: its tail must not reach the message.
    with pytest.raises(CredentialError) as info:
        expand_env(value, ENV, where="registries.ghcr.password")
    message = str(info.value)
    assert "tail42x" not in message
    assert "registries.ghcr.password" in message
    assert "$$" in message  # says how to write a literal $
    assert ENV["PASS"] not in message


@pytest.mark.parametrize("value", ["cost: 5$", "$1", "${", "${USER_NAME", "${}", "a$-b", "s3cr$"])
def test_expand_env_stray_dollar_is_an_error_that_quotes_nothing(value: str) -> None:
    with pytest.raises(CredentialError) as info:
        expand_env(value, ENV)
    message = str(info.value)
    assert "$$" in message
    for part in ("cost", "USER_NAME", "s3cr", "-b"):
        assert part not in message


def test_expand_env_missing_variable_is_not_an_empty_secret() -> None:
    # An empty value is fine when set; an unset one is an error.
    assert expand_env("$EMPTY", ENV) == ""
    with pytest.raises(CredentialError, match=r"is not set$"):
        expand_env("${UNSET}", ENV)
    with pytest.raises(CredentialError, match=r"not set"):
        expand_env("$UNSET", ENV)


def test_expand_env_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRRORBOT_TEST_SECRET", "from-os")
    monkeypatch.delenv("MIRRORBOT_TEST_UNSET", raising=False)
    assert expand_env("${MIRRORBOT_TEST_SECRET}") == "from-os"
    with pytest.raises(CredentialError, match="MIRRORBOT_TEST_UNSET"):
        expand_env("${MIRRORBOT_TEST_UNSET}")


def test_credential_error_is_a_mirrorbot_error() -> None:
    assert issubclass(CredentialError, MirrorbotError)


# --- parse_user_password ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "username", "password"),
    [
        ("user:pass", "user", "pass"),
        ("user:pa:ss", "user", "pa:ss"),
        ("user::", "user", ":"),
        ("user:", "user", ""),
        ("robot$ci:tok/en+=", "robot$ci", "tok/en+="),
    ],
)
def test_parse_user_password(value: str, username: str, password: str) -> None:
    assert parse_user_password(value) == Credential(username, password)


@pytest.mark.parametrize("value", ["", "userpass", ":secret-only"])
def test_parse_user_password_rejects(value: str) -> None:
    with pytest.raises(CredentialError, match="USERNAME:PASSWORD") as info:
        parse_user_password(value)
    if value:
        assert value not in str(info.value)


# --- Credential ------------------------------------------------------------------------------


def test_repr_and_str_never_show_secrets() -> None:
    credential = Credential("alice", PASSWORD, TOKEN)
    for text in (repr(credential), str(credential), f"{credential}", f"{credential!r}"):
        assert "alice" in text
        assert PASSWORD not in text
        assert TOKEN not in text
        assert b64(f"alice:{PASSWORD}") not in text


def test_repr_of_token_credential_hides_token() -> None:
    assert TOKEN not in repr(Credential(identity_token=TOKEN))


def test_anonymous() -> None:
    assert Credential().anonymous
    assert not Credential("user").anonymous
    assert not Credential(password="p").anonymous
    assert not Credential(identity_token="t").anonymous


def test_basic_header() -> None:
    header = Credential("alice", PASSWORD).basic_header()
    assert header == "Basic " + b64(f"alice:{PASSWORD}")
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == f"alice:{PASSWORD}"


def test_secrets() -> None:
    credential = Credential("alice", PASSWORD, TOKEN)
    assert set(credential.secrets()) == {PASSWORD, TOKEN, b64(f"alice:{PASSWORD}")}
    assert Credential(identity_token=TOKEN).secrets() == (TOKEN,)
    assert Credential("alice").secrets() == ()
    assert Credential().secrets() == ()


# --- docker_config_path --------------------------------------------------------------------------


def test_docker_config_path() -> None:
    assert docker_config_path({"DOCKER_CONFIG": "/cfg", "HOME": "/home/u"}) == Path(
        "/cfg/config.json"
    )
    assert docker_config_path({"HOME": "/home/u"}) == Path("/home/u/.docker/config.json")
    assert docker_config_path({"DOCKER_CONFIG": "", "HOME": "/home/u"}) == Path(
        "/home/u/.docker/config.json"
    )


# --- CredentialStore over a docker config.json ----------------------------------------------------


def write_config(tmp_path: Path, config: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_missing_config_is_anonymous(tmp_path: Path) -> None:
    store = CredentialStore(docker_config=tmp_path / "absent.json")
    assert store.lookup("ghcr.io") == Credential()
    assert store.lookup("ghcr.io").anonymous


def test_auths_with_base64_auth(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64(f"alice:{PASSWORD}")}}})
    store = CredentialStore(docker_config=path)
    assert store.lookup("ghcr.io") == Credential("alice", PASSWORD)
    assert store.lookup("quay.io").anonymous


def test_auths_with_username_and_password(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, {"auths": {"https://quay.io": {"username": "bob", "password": PASSWORD}}}
    )
    assert CredentialStore(docker_config=path).lookup("quay.io") == Credential("bob", PASSWORD)


def test_auths_with_identity_token(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {"myacr.azurecr.io": {"identitytoken": TOKEN}}})
    credential = CredentialStore(docker_config=path).lookup("myacr.azurecr.io")
    assert credential == Credential(identity_token=TOKEN)
    assert not credential.anonymous


def test_auths_with_auth_and_identity_token(tmp_path: Path) -> None:
    entry = {"auth": b64("00000000-0000-0000-0000-000000000000:"), "identitytoken": TOKEN}
    path = write_config(tmp_path, {"auths": {"myacr.azurecr.io": entry}})
    credential = CredentialStore(docker_config=path).lookup("myacr.azurecr.io")
    assert credential.identity_token == TOKEN
    assert credential.username == "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    "key",
    [
        "ghcr.io",
        "https://ghcr.io",
        "http://ghcr.io",
        "https://ghcr.io/v1/",
        "https://ghcr.io/v2/",
        "ghcr.io/",
    ],
)
def test_auths_keys_are_compared_by_host(tmp_path: Path, key: str) -> None:
    path = write_config(tmp_path, {"auths": {key: {"auth": b64(f"alice:{PASSWORD}")}}})
    store = CredentialStore(docker_config=path)
    assert store.lookup("ghcr.io") == Credential("alice", PASSWORD)
    assert store.lookup("ghcr.io.evil.example").anonymous
    assert store.lookup("evil.example").anonymous


def test_auths_exact_key_wins_over_host_match(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {
            "auths": {
                "https://ghcr.io/v2/": {"auth": b64("legacy:old")},
                "ghcr.io": {"auth": b64(f"alice:{PASSWORD}")},
            }
        },
    )
    assert CredentialStore(docker_config=path).lookup("ghcr.io") == Credential("alice", PASSWORD)


def test_registry_port_is_part_of_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {"localhost:5000": {"auth": b64("u:p")}}})
    store = CredentialStore(docker_config=path)
    assert store.lookup("localhost:5000") == Credential("u", "p")
    assert store.lookup("localhost").anonymous
    assert store.lookup("localhost:5001").anonymous


@pytest.mark.parametrize(
    "key", ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
)
def test_docker_hub_keys(tmp_path: Path, key: str) -> None:
    path = write_config(tmp_path, {"auths": {key: {"auth": b64(f"hubuser:{PASSWORD}")}}})
    store = CredentialStore(docker_config=path)
    assert store.lookup("docker.io") == Credential("hubuser", PASSWORD)
    assert store.lookup("ghcr.io").anonymous


def test_docker_hub_key_is_not_used_for_other_hosts(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": b64("hubuser:p")}}}
    )
    assert CredentialStore(docker_config=path).lookup("index.docker.io.example.com").anonymous


def test_explicit_credentials_override_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64("file-user:file-pass")}}})
    explicit = Credential("cli-user", PASSWORD)
    store = CredentialStore({"ghcr.io": explicit}, docker_config=path)
    assert store.lookup("ghcr.io") == explicit


def test_set_overrides_a_cached_answer(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64("file-user:file-pass")}}})
    store = CredentialStore(docker_config=path)
    assert store.lookup("ghcr.io").username == "file-user"
    store.set("ghcr.io", Credential("new-user", "new-pass"))
    assert store.lookup("ghcr.io") == Credential("new-user", "new-pass")


def test_config_is_read_once(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64("u:p")}}})
    store = CredentialStore(docker_config=path)
    assert store.lookup("ghcr.io") == Credential("u", "p")
    path.write_text("not json any more", encoding="utf-8")
    assert store.lookup("quay.io").anonymous  # the parsed file is kept for the run


@pytest.mark.parametrize(
    "text",
    [
        '{"auths": {"ghcr.io": {"auth": "' + b64(f"alice:{PASSWORD}") + '"',
        '{"auths": {"ghcr.io": {"password": "' + PASSWORD + '", }}}',
        "\ufeff" + '{"auths": {"ghcr.io": {"password": "' + PASSWORD + '"}}}',
    ],
)
def test_malformed_config_error_has_no_secret(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CredentialError, match="not valid JSON") as info:
        CredentialStore(docker_config=path).lookup("ghcr.io")
    shown = str(info.value) + repr(info.value)
    assert PASSWORD not in shown
    assert b64(f"alice:{PASSWORD}") not in shown
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_bad_base64_auth_error_names_registry_not_value(tmp_path: Path) -> None:
    bad = "not*base64*" + PASSWORD
    path = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": bad}}})
    with pytest.raises(CredentialError, match=r"ghcr\.io") as info:
        CredentialStore(docker_config=path).lookup("ghcr.io")
    assert PASSWORD not in str(info.value)
    assert bad not in str(info.value)


@pytest.mark.parametrize(
    "config",
    [[], "string", {"auths": []}, {"auths": {"ghcr.io": "x"}}, {"auths": {"ghcr.io": {}}}],
)
def test_odd_configs_are_anonymous(tmp_path: Path, config: object) -> None:
    path = write_config(tmp_path, config)
    assert CredentialStore(docker_config=path).lookup("ghcr.io").anonymous


def test_unreadable_config_is_an_error(tmp_path: Path) -> None:
    directory = tmp_path / "config.json"
    directory.mkdir()
    with pytest.raises(CredentialError, match=r"cannot read config\.json"):
        CredentialStore(docker_config=directory).lookup("ghcr.io")


# --- credential helpers, as real executables on PATH ----------------------------------------------

HELPER_SCRIPT = """#!/bin/sh
# A docker credential helper: "get", the server URL on stdin, JSON on stdout.
server=$(cat)
printf '%s %s %s\\n' "{name}" "$1" "$server" >> "{log}"
case "$server" in
  ghcr.io) printf '{{"ServerURL":"%s","Username":"helper-user","Secret":"{password}"}}' "$server" ;;
  https://index.docker.io/v1/) printf '{{"Username":"hub-user","Secret":"{password}"}}' ;;
  token.example.com) printf '{{"Username":"<token>","Secret":"{token}"}}' ;;
  broken.example.com) echo "helper crashed while holding {password}" >&2; exit 3 ;;
  garbage.example.com) echo "this is not json {password}" ;;
  malformed.example.com) printf '{{"Username":1,"Secret":"{password}"}}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


class Helpers:
    def __init__(self, bindir: Path, log: Path) -> None:
        self.bindir = bindir
        self.log = log

    def install(self, name: str) -> None:
        script = self.bindir / f"docker-credential-{name}"
        script.write_text(
            HELPER_SCRIPT.format(name=name, log=self.log, password=PASSWORD, token=TOKEN),
            encoding="utf-8",
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def calls(self) -> list[str]:
        if not self.log.exists():
            return []
        return self.log.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Helpers:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return Helpers(bindir, tmp_path / "helper.log")


def test_cred_helpers(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("ghcr")
    path = write_config(tmp_path, {"credHelpers": {"ghcr.io": "ghcr"}})
    store = CredentialStore(docker_config=path)
    assert store.lookup("ghcr.io") == Credential("helper-user", PASSWORD)
    assert helpers.calls() == ["ghcr get ghcr.io"]
    # No helper configured for this host, and no credsStore: anonymous, no call.
    assert store.lookup("quay.io").anonymous
    assert helpers.calls() == ["ghcr get ghcr.io"]


def test_helper_answer_is_cached(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("ghcr")
    path = write_config(tmp_path, {"credHelpers": {"ghcr.io": "ghcr"}})
    store = CredentialStore(docker_config=path)
    assert store.lookup("ghcr.io") == store.lookup("ghcr.io")
    assert len(helpers.calls()) == 1


def test_cred_helpers_win_over_auths(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("ghcr")
    path = write_config(
        tmp_path,
        {
            "auths": {"ghcr.io": {"auth": b64("file-user:file-pass")}},
            "credHelpers": {"ghcr.io": "ghcr"},
        },
    )
    assert CredentialStore(docker_config=path).lookup("ghcr.io").username == "helper-user"


def test_creds_store(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("desktop")
    path = write_config(tmp_path, {"credsStore": "desktop"})
    store = CredentialStore(docker_config=path)
    assert store.lookup("ghcr.io") == Credential("helper-user", PASSWORD)
    assert helpers.calls() == ["desktop get ghcr.io"]


def test_creds_store_for_docker_hub_gets_the_index_url(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("desktop")
    # What Docker Desktop writes: an empty auths entry, the secret in the store.
    path = write_config(
        tmp_path, {"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "desktop"}
    )
    assert CredentialStore(docker_config=path).lookup("docker.io") == Credential(
        "hub-user", PASSWORD
    )
    assert helpers.calls() == ["desktop get https://index.docker.io/v1/"]


def test_cred_helpers_for_docker_hub(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("hub")
    path = write_config(tmp_path, {"credHelpers": {"https://index.docker.io/v1/": "hub"}})
    assert CredentialStore(docker_config=path).lookup("docker.io").username == "hub-user"
    assert helpers.calls() == ["hub get https://index.docker.io/v1/"]


def test_auths_win_over_creds_store(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("desktop")
    path = write_config(
        tmp_path,
        {"auths": {"ghcr.io": {"auth": b64("file-user:file-pass")}}, "credsStore": "desktop"},
    )
    assert CredentialStore(docker_config=path).lookup("ghcr.io") == Credential(
        "file-user", "file-pass"
    )
    assert helpers.calls() == []


def test_helper_token_username_is_an_identity_token(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("acr")
    path = write_config(tmp_path, {"credHelpers": {"token.example.com": "acr"}})
    credential = CredentialStore(docker_config=path).lookup("token.example.com")
    assert credential == Credential(identity_token=TOKEN)
    assert credential.username == ""
    assert credential.password == ""


def test_helper_not_found_is_anonymous(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("desktop")
    path = write_config(tmp_path, {"credsStore": "desktop"})
    store = CredentialStore(docker_config=path)
    assert store.lookup("unknown.example.com").anonymous
    assert helpers.calls() == ["desktop get unknown.example.com"]


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("broken.example.com", "exited 3"),
        ("garbage.example.com", "other than JSON"),
        ("malformed.example.com", "malformed credentials"),
    ],
)
def test_helper_failures_never_show_output(
    tmp_path: Path, helpers: Helpers, host: str, message: str
) -> None:
    helpers.install("desktop")
    path = write_config(tmp_path, {"credsStore": "desktop"})
    with pytest.raises(CredentialError, match=message) as info:
        CredentialStore(docker_config=path).lookup(host)
    assert PASSWORD not in str(info.value)
    assert "desktop" in str(info.value)


def test_missing_helper_executable_is_an_error(tmp_path: Path, helpers: Helpers) -> None:
    path = write_config(tmp_path, {"credsStore": "nonexistent-helper-xyz"})
    with pytest.raises(CredentialError, match="docker-credential-nonexistent-helper-xyz"):
        CredentialStore(docker_config=path).lookup("ghcr.io")


@pytest.mark.parametrize("name", ["../evil", "a b", "x;rm", ""])
def test_helper_names_are_checked(tmp_path: Path, helpers: Helpers, name: str) -> None:
    path = write_config(tmp_path, {"credHelpers": {"ghcr.io": name}})
    with pytest.raises(CredentialError, match="invalid credential helper name"):
        CredentialStore(docker_config=path).lookup("ghcr.io")
    assert helpers.calls() == []


def test_empty_creds_store_is_ignored(tmp_path: Path, helpers: Helpers) -> None:
    path = write_config(tmp_path, {"credsStore": ""})
    assert CredentialStore(docker_config=path).lookup("ghcr.io").anonymous


# --- secrets() -------------------------------------------------------------------------------


def test_store_secrets_cover_explicit_and_resolved(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("acr")
    path = write_config(
        tmp_path,
        {
            "auths": {"quay.io": {"auth": b64("bob:quay-pass")}},
            "credHelpers": {"token.example.com": "acr"},
        },
    )
    store = CredentialStore({"ghcr.io": Credential("alice", PASSWORD)}, docker_config=path)
    # Nothing resolved from the file yet: only the explicit secrets are known.
    assert set(store.secrets()) == {PASSWORD, b64(f"alice:{PASSWORD}")}
    store.lookup("quay.io")
    store.lookup("token.example.com")
    store.lookup("anonymous.example.com")
    assert set(store.secrets()) == {
        PASSWORD,
        b64(f"alice:{PASSWORD}"),
        "quay-pass",
        b64("bob:quay-pass"),
        TOKEN,
    }
    assert "" not in store.secrets()


# --- where a credential came from: what the "credentials refused" line tells to check -------------


def test_origin_names_the_docker_config_entry(tmp_path: Path, helpers: Helpers) -> None:
    helpers.install("ghcr")
    helpers.install("desktop")
    path = write_config(
        tmp_path,
        {
            "auths": {"https://quay.io": {"auth": b64(f"alice:{PASSWORD}")}},
            "credHelpers": {"ghcr.io": "ghcr"},
            "credsStore": "desktop",
        },
    )
    store = CredentialStore(docker_config=path)
    assert store.lookup("quay.io").origin == f'auths."https://quay.io" in {path}'
    assert (
        store.lookup("ghcr.io").origin
        == f'credHelpers."ghcr.io" (docker-credential-ghcr) in {path}'
    )
    assert store.lookup("docker.io").origin == f"credsStore (docker-credential-desktop) in {path}"
    assert store.lookup("gcr.io").origin == ""  # the store has nothing: anonymous
    assert Credential("alice", PASSWORD) == store.lookup("quay.io")  # origin is not identity
    for registry in ("quay.io", "ghcr.io", "docker.io"):
        assert PASSWORD not in store.lookup(registry).origin
        assert PASSWORD not in repr(store.lookup(registry))


def test_origin_of_flags_and_config(tmp_path: Path) -> None:
    from mirrorbot.config import credentials_from_config, load_config

    assert parse_user_password("bot:pw", "--dest-creds").origin == "--dest-creds"
    config = tmp_path / "mirror.yaml"
    config.write_text(
        "mirror:\n  registry: ghcr.io\n  namespace: m\nnamespaces:\n  - source: quay.io/a\n"
        "registries:\n  ghcr.io:\n    username: bot\n    password: ${PW}\n"
        "  quay.io:\n    identity_token: ${TOKEN}\n"
    )
    found = credentials_from_config(load_config(config), {"PW": PASSWORD, "TOKEN": TOKEN})
    # The key and the variable behind it: what the person has to check.
    assert found["ghcr.io"].origin == "registries.ghcr.io.password ($PW) in mirror.yaml"
    assert found["quay.io"].origin == "registries.quay.io.identity_token ($TOKEN) in mirror.yaml"
