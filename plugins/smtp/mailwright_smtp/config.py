"""The SMTP connector's configuration (validated when the connector is opened).

Set fields as `MAILWRIGHT_CONNECTOR_SMTP_<FIELD>`, as files in
`$MAILWRIGHT_SECRETS_DIR/smtp/<field>`, or under `connectors: {smtp: …}` in the
configuration file. `password`, `dkim_private_key` and `webhook_secret` are secrets.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import Field, SecretStr, field_validator, model_validator

from mailwright.connectors import (
    ConfigProblem,
    ConnectorConfig,
    ConnectorConfigError,
    env_variable,
    field_error,
)
from mailwright.runtime.settings import Duration

Security = Literal["starttls", "tls", "none"]

DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}

# RFC 6376 §5.4.1 and RFC 8058 §4: what identifies the message, its author and its
# one-click unsubscribe; the MIME structure headers so the body cannot be re-framed.
DEFAULT_SIGNED_HEADERS: tuple[str, ...] = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
)

MIN_RSA_BITS = 1024
MIN_SECRET_CHARS = 16


class SmtpConfig(ConnectorConfig):
    """How to reach the SMTP relay, how fast to send, and how to sign."""

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default: 587 for `starttls`, 465 for `tls`, 25 for `none`."""
    security: Security = "starttls"
    """`starttls` (upgrade a plain connection; refused if the server can't), `tls`
    (implicit TLS from the first byte) or `none` (local relays and test sinks only)."""
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    """PEM bundle to trust instead of the system's (a relay with a private CA)."""
    verify_certificate: bool = True
    local_hostname: str | None = None
    """The name given in EHLO; default: this machine's name."""
    timeout: Duration = timedelta(seconds=30)

    pool_size: int = Field(default=4, ge=1, le=64)
    """Connections kept open to the relay and used at the same time."""
    max_messages_per_connection: int = Field(default=100, ge=1)
    idle_timeout: Duration = timedelta(seconds=30)
    """A connection idle longer than this is closed instead of reused (relays drop them)."""

    rate_per_second: float = Field(default=20.0, gt=0)
    """The relay's allowed sending rate, declared to delivery's shared token bucket."""
    burst: int = Field(default=20, ge=1)
    rate_limited_retry_after: Duration = timedelta(seconds=60)
    """How long to wait after a 421 or 451 reply, which carries no time of its own."""

    envelope_from: str | None = None
    """The MAIL FROM (bounce) address; default: the message's From address."""
    message_id_domain: str | None = None
    """Domain of generated Message-IDs; default: the From address's domain."""

    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_private_key: SecretStr | None = None
    """PEM RSA private key (PKCS#1 or PKCS#8, unencrypted)."""
    dkim_private_key_file: Path | None = None
    dkim_headers: tuple[str, ...] = DEFAULT_SIGNED_HEADERS
    dkim_processes: int = Field(default=0, ge=0, le=64)
    """Worker processes that sign (RSA in dkimpy is pure Python, ~9 ms per 2048-bit
    signature); 0 signs in this process."""

    webhook_secret: SecretStr | None = None
    """The shared secret a bounce or complaint report is POSTed with (`Authorization:
    Bearer <secret>`, or as the password of HTTP Basic); required to receive them."""
    report_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    """The largest report accepted; ingest's `webhook_max_bytes` caps it as well."""

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]

    @property
    def dkim_enabled(self) -> bool:
        return self.dkim_domain is not None

    @field_validator("dkim_headers")
    @classmethod
    def _signs_from(cls, headers: tuple[str, ...]) -> tuple[str, ...]:
        lowered = tuple(header.strip().lower() for header in headers)
        if "from" not in lowered:
            raise ValueError("must include 'from' (RFC 6376 requires it)")
        if any(not header or ":" in header or " " in header for header in lowered):
            raise ValueError("must be header names")
        return lowered

    @field_validator("webhook_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters")
        return secret

    def report_secret(self) -> bytes:
        """The webhook secret as bytes; `ConnectorConfigError` naming the variable if unset."""
        if self.webhook_secret is None:
            variable = env_variable("smtp", "webhook_secret")
            problem = ConfigProblem(
                "webhook_secret", "not set", f"required to receive reports; set {variable}"
            )
            raise ConnectorConfigError("smtp", [problem])
        return self.webhook_secret.get_secret_value().encode()

    @field_validator("ca_file", "dkim_private_key_file")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError("no such file")
        return path

    @model_validator(mode="after")
    def _consistent(self) -> SmtpConfig:
        if self.username is not None and self.password is None:
            raise field_error(SmtpConfig, "password", "required when username is set")
        if self.password is not None and self.username is None:
            raise field_error(SmtpConfig, "username", "required when password is set")
        if self.dkim_private_key is not None and self.dkim_private_key_file is not None:
            raise field_error(
                SmtpConfig, "dkim_private_key_file", "set it or dkim_private_key, not both"
            )
        has_key = self.dkim_private_key is not None or self.dkim_private_key_file is not None
        parts = {
            "dkim_domain": self.dkim_domain is not None,
            "dkim_selector": self.dkim_selector is not None,
            "dkim_private_key": has_key,
        }
        if any(parts.values()):
            for name, present in parts.items():
                if not present:
                    raise field_error(SmtpConfig, name, "required for DKIM signing")
            try:
                self.dkim_key_pem()
            except ValueError as error:
                field = (
                    "dkim_private_key_file" if self.dkim_private_key_file else "dkim_private_key"
                )
                raise field_error(SmtpConfig, field, str(error)) from None
        return self

    def dkim_key_pem(self) -> bytes:
        """The DKIM private key as PKCS#1 PEM (what dkimpy reads); ValueError if unusable."""
        if self.dkim_private_key_file is not None:
            data = self.dkim_private_key_file.read_bytes()
        elif self.dkim_private_key is not None:
            data = self.dkim_private_key.get_secret_value().encode()
        else:
            raise ValueError("DKIM is not configured")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            # The message must not carry the key material.
            raise ValueError("not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("must be an RSA key (rsa-sha256)")
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"an RSA key of {key.key_size} bits is too weak; use 2048")
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
