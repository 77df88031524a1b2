"""Bearer tokens scoped to a workspace and to verbs.

A token is a JWT (HS256) signed with the deployment's auth secret, carrying the workspace
it may act on (`ws`, or `*` for internal services), its scopes (`scp`: `events:write`,
`profiles:read`, `segments:*`, `*`) and an optional expiry. Each RPC declares the scope it
needs in the proto (`(mailwright.common.v1.required_scope)`); the auth interceptor checks
both, in one place.
"""

from __future__ import annotations

import contextvars
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from mailwright.errors import PermissionDenied, Unauthenticated

ISSUER = "mailwright"
ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 1024
"""Verified tokens remembered per authority (the most recently used)."""
ALL_WORKSPACES = "*"

SCOPES: tuple[str, ...] = (
    "events:write",
    "taxonomy:read",
    "taxonomy:write",
    "profiles:read",
    "profiles:write",
    "profiles:delete",
    "segments:read",
    "segments:write",
    "templates:read",
    "templates:write",
    "templates:render",
    "campaigns:read",
    "campaigns:write",
    "journeys:read",
    "journeys:write",
    "sends:read",
    "sends:write",
    "suppressions:read",
    "suppressions:write",
    "audiences:read",
    "audiences:write",
    "admin",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject, workspace and scopes."""

    subject: str
    workspace: str
    scopes: frozenset[str]
    token_id: str = ""

    def allows_scope(self, required: str) -> bool:
        if not required or "*" in self.scopes or required in self.scopes:
            return True
        family = required.split(":", 1)[0]
        return f"{family}:*" in self.scopes

    def allows_workspace(self, workspace: str) -> bool:
        return self.workspace in (ALL_WORKSPACES, workspace)

    def check(self, workspace: str, scope: str = "") -> None:
        if not self.allows_workspace(workspace):
            raise PermissionDenied(f"token is not valid for workspace {workspace!r}")
        if scope and not self.allows_scope(scope):
            raise PermissionDenied(f"token lacks scope {scope!r}")


current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "mailwright_principal", default=None
)


class TokenAuthority:
    """Issues and verifies tokens with one secret."""

    def __init__(self, secret: str, previous: Sequence[str] = ()) -> None:
        for key in (secret, *previous):
            if len(key) < 32:
                raise ValueError("MAILWRIGHT_AUTH_SECRET must be at least 32 characters")
        self._secret = secret
        # Tokens signed with an earlier secret stay valid while a rotation rolls out.
        self._verifying = (secret, *previous)
        # Tokens already verified, with their expiry: services calling each other send the
        # same token on every call, and an HMAC check plus JSON decoding per call is most
        # of an in-process call's auth cost. Keyed by the whole token (signature included),
        # so a hit is the same verdict a new check would give until the token expires.
        self._verified: OrderedDict[str, tuple[Principal, float | None]] = OrderedDict()
        self._verified_lock = threading.Lock()

    def issue(
        self,
        workspace: str,
        scopes: Iterable[str],
        *,
        subject: str = "cli",
        ttl_seconds: int | None = None,
    ) -> str:
        scopes = sorted(set(scopes))
        unknown = [s for s in scopes if not _known_scope(s)]
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}, x:*, *")
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": ISSUER,
            "sub": subject,
            "ws": workspace,
            "scp": scopes,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        if ttl_seconds is not None:
            claims["exp"] = now + ttl_seconds
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        with self._verified_lock:
            cached = self._verified.get(token)
            if cached is not None:
                principal, expires = cached
                if expires is None or time.time() < expires:
                    self._verified.move_to_end(token)
                    return principal
                del self._verified[token]
        principal, expires = self._check(token)
        with self._verified_lock:
            self._verified[token] = (principal, expires)
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return principal

    def _check(self, token: str) -> tuple[Principal, float | None]:
        claims: dict[str, Any] = {}
        for index, key in enumerate(self._verifying):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    issuer=ISSUER,
                    options={"require": ["iss", "sub", "ws", "scp", "iat"]},
                )
                break
            except jwt.InvalidSignatureError as error:
                if index == len(self._verifying) - 1:
                    raise Unauthenticated(f"invalid token: {error}") from error
            except jwt.ExpiredSignatureError as error:
                raise Unauthenticated("token has expired") from error
            except jwt.InvalidTokenError as error:
                raise Unauthenticated(f"invalid token: {error}") from error
        scopes = claims.get("scp")
        workspace = claims.get("ws")
        if not isinstance(scopes, list) or not isinstance(workspace, str) or not workspace:
            raise Unauthenticated("invalid token: bad workspace or scopes claim")
        principal = Principal(
            subject=str(claims["sub"]),
            workspace=workspace,
            scopes=frozenset(str(s) for s in scopes),
            token_id=str(claims.get("jti", "")),
        )
        expires = claims.get("exp")
        return principal, float(expires) if isinstance(expires, int | float) else None

    def verify_header(self, value: str | None) -> Principal:
        if not value:
            raise Unauthenticated("missing authorization metadata (Bearer token)")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization must be 'Bearer <token>'")
        return self.verify(token.strip())


def _known_scope(scope: str) -> bool:
    if scope == "*" or scope in SCOPES:
        return True
    family, _, verb = scope.partition(":")
    return verb == "*" and any(s.startswith(family + ":") for s in SCOPES)


def load_or_create_secret(configured: str, data_dir: Path) -> str:
    """The configured secret, or a random one kept in the data directory (embedded use)."""
    if configured:
        return configured
    path = data_dir / "auth-secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret


def all_scopes() -> Sequence[str]:
    return SCOPES
