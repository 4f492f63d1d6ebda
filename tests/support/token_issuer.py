"""A tiny token server for Distribution's ``auth: token`` mode.

It signs JWTs (ES256) with a throwaway key whose self-signed certificate is the
registry's ``rootcertbundle``; the certificate travels in the ``x5c`` header.
Authenticated users get pull/push/delete on everything; anonymous callers get
pull only. Every request is recorded so tests can assert what reached it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE = "mirrorbot-test-registry"
ISSUER = "mirrorbot-test-issuer"


@dataclass
class TokenRequest:
    scopes: list[str]
    user: str | None
    authorization: str | None


@dataclass
class TokenIssuer:
    workdir: Path
    users: dict[str, str]
    lifetime: int = 300
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mirrorbot test token issuer")])
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = self.workdir / "token-cert.pem"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._pem_key = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/token"

    def registry_auth(self) -> dict[str, object]:
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.cert_path),
            }
        }

    def start(self) -> TokenIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, user: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            for part in scope.split():
                kind, _, rest = part.partition(":")
                name, _, actions = rest.rpartition(":")
                wanted = [a for a in actions.split(",") if a]
                granted = wanted if user else [a for a in wanted if a == "pull"]
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        der = self._cert.public_bytes(serialization.Encoding.DER)
        return jwt.encode(
            claims,
            self._pem_key,
            algorithm="ES256",
            headers={"x5c": [base64.b64encode(der).decode()]},
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                authorization = self.headers.get("Authorization")
                user: str | None = None
                if authorization:
                    scheme, _, encoded = authorization.partition(" ")
                    if scheme.lower() != "basic":
                        self._reply(401, b'{"details":"basic auth only"}')
                        return
                    name, _, password = base64.b64decode(encoded).decode().partition(":")
                    if issuer.users.get(name) != password:
                        issuer.requests.append(
                            TokenRequest(query.get("scope", []), None, authorization)
                        )
                        self._reply(401, b'{"details":"wrong credentials"}')
                        return
                    user = name
                scopes = query.get("scope", [])
                issuer.requests.append(TokenRequest(scopes, user, authorization))
                token = issuer.issue(user, scopes)
                body = json.dumps(
                    {"token": token, "access_token": token, "expires_in": issuer.lifetime}
                ).encode()
                self._reply(200, body)

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
