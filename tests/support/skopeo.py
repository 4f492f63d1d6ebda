"""skopeo as the independent referee: what it sees in a registry is the truth."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any


def _tls(registry_ref: str) -> list[str]:
    return ["--tls-verify=false"]


def inspect_raw(reference: str, creds: tuple[str, str] | None = None) -> bytes:
    """``skopeo inspect --raw docker://REF``: the manifest bytes as served."""
    command = ["skopeo", "inspect", "--raw", *_tls(reference)]
    if creds:
        command += ["--creds", f"{creds[0]}:{creds[1]}"]
    completed = subprocess.run(
        [*command, f"docker://{reference}"], capture_output=True, check=True, timeout=60
    )
    return completed.stdout


def manifest_digest(reference: str, creds: tuple[str, str] | None = None) -> str:
    return "sha256:" + hashlib.sha256(inspect_raw(reference, creds)).hexdigest()


def copy_to_oci(
    reference: str, directory: Path, creds: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Pull every platform into an OCI layout (skopeo verifies every blob digest) and return index.json."""
    command = ["skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false"]
    if creds:
        command += ["--src-creds", f"{creds[0]}:{creds[1]}"]
    subprocess.run(
        [*command, f"docker://{reference}", f"oci:{directory}:pulled"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    loaded: dict[str, Any] = json.loads((directory / "index.json").read_text())
    return loaded


def list_tags(repository: str, creds: tuple[str, str] | None = None) -> list[str]:
    command = ["skopeo", "list-tags", "--tls-verify=false"]
    if creds:
        command += ["--creds", f"{creds[0]}:{creds[1]}"]
    completed = subprocess.run(
        [*command, f"docker://{repository}"], capture_output=True, check=True, timeout=60
    )
    tags: list[str] = json.loads(completed.stdout)["Tags"]
    return tags
