"""The HTTP stack's stray errors, named without importing anyio or h11 up front (issue 16)."""

from __future__ import annotations

import anyio
import h11
import httpx

from mirrorbot.engine.registry.retry import protocol_failure, retry_hook
from mirrorbot.errors import ProtocolViolationError, RegistryUnreachableError


def test_anyio_errors_that_leak_through_are_network_failures() -> None:
    for error in (anyio.BrokenResourceError(), anyio.ClosedResourceError(), anyio.EndOfStream()):
        assert retry_hook(error) is True
        failure = protocol_failure(error, "registry.example", "registry.example/app:v1")
        assert isinstance(failure, RegistryUnreachableError)


def test_an_h11_protocol_error_is_a_protocol_violation() -> None:
    failure = protocol_failure(h11.RemoteProtocolError("bad framing"), "registry.example", None)
    assert isinstance(failure, ProtocolViolationError)
    assert "RemoteProtocolError" in str(failure)
    assert retry_hook(h11.RemoteProtocolError("bad framing")) is False


def test_other_errors_are_not_the_stacks() -> None:
    assert protocol_failure(ValueError("no"), "registry.example", None) is None
    assert isinstance(
        protocol_failure(httpx.ConnectError("refused"), "registry.example", None),
        RegistryUnreachableError,
    )
