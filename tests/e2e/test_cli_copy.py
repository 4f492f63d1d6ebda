"""``mirrorbot copy`` as users run it: a real process, real registries, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from mirrorbot.demo.corpus import ImageFactory
from mirrorbot.demo.registry import LocalRegistry
from mirrorbot.demo.seed import Seeder
from mirrorbot.engine.copier import fallback_tag, signature_tags
from tests.conftest import CREDS
from tests.support import skopeo
from tests.support.referrers import artifact, fallback_index


def mirrorbot(
    *args: str, env: dict[str, str] | None = None, home: Path
) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MIRRORBOT_")}
    environment = {
        **inherited,
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / ".docker"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "mirrorbot", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_copy_with_signatures_and_credentials_from_env(
    source_registry: LocalRegistry, token_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    factory = ImageFactory(ns)
    image = factory.index("signed", attestations=True)
    signature = factory.signature(image, f"{ns}/signed")
    sig_tag = signature_tags(image.digest)[0]
    with Seeder(source_registry.url) as seeder:
        seeder.push(f"{ns}/signed", "v1", image)
        seeder.push(f"{ns}/signed", sig_tag, signature)
    result = mirrorbot(
        "copy",
        "--signatures",
        f"{source_registry.host}/{ns}/signed:v1",
        f"{token_registry.host}/{ns}/signed",
        env={"MIRRORBOT_DEST_CREDS": f"{CREDS[0]}:{CREDS[1]}"},
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert image.digest in result.stdout
    assert CREDS[1] not in result.stdout + result.stderr
    assert skopeo.manifest_digest(f"{token_registry.host}/{ns}/signed:v1", CREDS) == image.digest
    assert (
        skopeo.manifest_digest(f"{token_registry.host}/{ns}/signed:{sig_tag}", CREDS)
        == signature.digest
    )

    again = mirrorbot(
        "copy",
        "--json",
        f"{source_registry.host}/{ns}/signed:v1",
        f"{token_registry.host}/{ns}/signed",
        env={"MIRRORBOT_DEST_CREDS": f"{CREDS[0]}:{CREDS[1]}"},
        home=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    [report] = json.loads(again.stdout)
    assert report["alreadyPresent"] is True
    assert report["digest"] == image.digest


def test_credentials_from_docker_config(
    source_registry: LocalRegistry, basic_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    import base64

    image = ImageFactory(ns).image("via-docker-config")
    with Seeder(source_registry.url) as seeder:
        seeder.push(f"{ns}/app", "v1", image)
    docker_dir = tmp_path / ".docker"
    docker_dir.mkdir()
    encoded = base64.b64encode(f"{CREDS[0]}:{CREDS[1]}".encode()).decode()
    (docker_dir / "config.json").write_text(
        json.dumps({"auths": {basic_registry.host: {"auth": encoded}}})
    )
    result = mirrorbot(
        "copy",
        f"{source_registry.host}/{ns}/app:v1",
        f"{basic_registry.host}/{ns}/app:v1",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert skopeo.manifest_digest(f"{basic_registry.host}/{ns}/app:v1", CREDS) == image.digest
    # Sizes as sync prints them (KiB, MiB), not a raw byte count.
    assert re.search(r"blobs uploaded \(\d+\.\d KiB\)", result.stdout), result.stdout


def test_bad_reference_is_a_usage_error(tmp_path: Path) -> None:
    result = mirrorbot("copy", "Not/Valid:ref", "127.0.0.1:1/x:y", home=tmp_path)
    assert result.returncode == 2
    assert "Not/Valid" in result.stderr
    assert "lowercase" in result.stderr


def test_missing_image_fails_with_exit_1_and_no_secret(
    source_registry: LocalRegistry, basic_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    result = mirrorbot(
        "copy",
        f"{source_registry.host}/{ns}/absent:v9",
        f"{basic_registry.host}/{ns}/absent:v9",
        "--dest-creds",
        f"{CREDS[0]}:{CREDS[1]}",
        home=tmp_path,
    )
    assert result.returncode == 1
    assert f"{ns}/absent:v9" in result.stderr
    assert "404" in result.stderr
    assert CREDS[1] not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_copy_with_signatures_copies_the_referrers_fallback_tag(
    source_registry: LocalRegistry, plain_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    """``--signatures`` copies the bare ``sha256-<hex>`` referrers tag too, with what it lists."""
    factory = ImageFactory(ns)
    image = factory.image("referred")
    sbom = artifact(image, "application/spdx+json", b'{"spdxVersion": "SPDX-2.3"}')
    tag = fallback_tag(image.digest)
    with Seeder(source_registry.url) as seeder:
        seeder.push(f"{ns}/referred", "v1", image)
        seeder.push(f"{ns}/referred", sbom.digest, sbom)
        seeder.push(f"{ns}/referred", tag, fallback_index((sbom, "application/spdx+json")))
    result = mirrorbot(
        "copy",
        "--signatures",
        f"{source_registry.host}/{ns}/referred:v1",
        f"{plain_registry.host}/{ns}/referred",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    target = f"{plain_registry.host}/{ns}/referred"
    index = json.loads(skopeo.inspect_raw(f"{target}:{tag}"))
    assert [entry["digest"] for entry in index["manifests"]] == [sbom.digest]
    assert skopeo.manifest_digest(f"{target}@{sbom.digest}") == sbom.digest


def test_copy_loads_no_config_state_or_publishing_module(
    source_registry: LocalRegistry, plain_registry: LocalRegistry, ns: str, tmp_path: Path
) -> None:
    """``copy`` has no config file, no state and nothing to publish: importing the config
    models (pydantic schemas, ruamel.yaml), GitPython or jinja2 is start-up it never uses."""
    image = ImageFactory(ns).image("lean")
    with Seeder(source_registry.url) as seeder:
        seeder.push(f"{ns}/lean", "v1", image)
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(n for n, m in sys.modules.items()"
        " if m is not None))))\n"
        "from mirrorbot.__main__ import run\n"
        "sys.argv = ['mirrorbot', *sys.argv[1:]]\n"
        "run()\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            str(probe),
            "copy",
            f"{source_registry.host}/{ns}/lean:v1",
            f"{plain_registry.host}/{ns}/lean",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert skopeo.manifest_digest(f"{plain_registry.host}/{ns}/lean:v1") == image.digest
    modules = json.loads(done.stdout.splitlines()[-1])
    assert "mirrorbot.engine.copier" in modules  # it did copy
    unused = ("mirrorbot.config", "mirrorbot.state", "ruamel", "git", "jinja2")
    assert [name for name in modules if name.partition(".")[0] in unused or name in unused] == []
