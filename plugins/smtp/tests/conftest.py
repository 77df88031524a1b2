"""Real SMTP servers (aiosmtpd) on localhost port 0, certificates and DKIM keys made here."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass
class Received:
    peer: Any
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool


@dataclass
class Recorder:
    """aiosmtpd handler that keeps every message, and which connection brought it."""

    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        self.messages.append(
            Received(
                peer=session.peer,
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                content=envelope.original_content or b"",
                # STARTTLS shows in the session; implicit TLS only on the transport.
                tls=session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 2.0.0 queued"

    @property
    def peers(self) -> set[Any]:
        return {message.peer for message in self.messages}


@dataclass
class Server:
    port: int
    recorder: Recorder
    sessions: list[SMTP]


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def smtp_server() -> AsyncIterator[StartServer]:
    """Start aiosmtpd servers on 127.0.0.1, port 0; all are closed after the test."""
    servers: list[asyncio.Server] = []

    async def start(
        recorder: Recorder | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> Server:
        recorder = recorder or Recorder()
        sessions: list[SMTP] = []

        def protocol() -> SMTP:
            session = SMTP(recorder, hostname="localhost", **options)
            sessions.append(session)
            return session

        loop = asyncio.get_running_loop()
        server = await loop.create_server(protocol, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(server)
        return Server(server.sockets[0].getsockname()[1], recorder, sessions)

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for localhost and 127.0.0.1."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@dataclass(frozen=True)
class DkimKeyPair:
    private_pem: str
    dns_record: bytes


@pytest.fixture(scope="session")
def dkim_keys() -> DkimKeyPair:
    """A 2048-bit RSA key and the TXT record that would publish its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    return DkimKeyPair(private_pem, record)


@pytest.fixture
def recorder() -> Recorder:
    """A fresh recording handler (set `rcpt_replies` or `data_reply` to refuse)."""
    return Recorder()


@pytest.fixture
def authenticator() -> Callable[[str, str], Callable[..., AuthResult]]:
    """Makes aiosmtpd authenticators accepting one username and password."""
    return password_authenticator


def password_authenticator(username: str, password: str) -> Callable[..., AuthResult]:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == username.encode()
            and data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return authenticate
