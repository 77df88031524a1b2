"""Signed tokens for open pixels, click redirects and one-click unsubscribe links.

The render service signs a token into every tracked link it writes; the ingest HTTP edge
verifies it before it records an open or a click, redirects, or unsubscribes. Both sides
import this module, so the format lives in one place.

A token is compact, URL-safe base64 (no padding) of::

    version (1 byte) | key id | workspace | send id | profile id
                                            (each: varint length + UTF-8)
    | kind (1 byte) | expires_at (varint, unix seconds) | url (varint length + UTF-8)
    | MAC (16 bytes)

Version 2 carries the recipient's profile id (empty for a send to a bare address), so
the edge records opens, clicks and unsubscribes against the person without a lookup.
Version 1 tokens (no profile id field) still verify, with `profile_id` empty.

The fields that are the same for every token of a send come first, so a batch signs
each link by hashing only its own tail (`TrackingSigner.for_send`).

The MAC is HMAC-SHA256, truncated to 128 bits, over a domain-separation prefix and every
byte before it, so no field can be changed, dropped or moved between token kinds. The
target URL is carried (and signed) only by click tokens: the edge can redirect without a
database read, and a forged URL cannot turn our domain into an open redirect.

Keys rotate: the first key of a `TrackingSigner` signs, any of its keys verifies, and the
key id travels in the token so verification needs no trial and error. Verification is
constant-time in the MAC comparison and checks the signature before the expiry, so an
attacker learns nothing from the kind of rejection they get for a token they forged.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "BoundSigner",
    "ClickTails",
    "ExpiredToken",
    "ForgedToken",
    "MalformedToken",
    "SendSigner",
    "SigningKey",
    "TokenKind",
    "TrackingClaims",
    "TrackingSigner",
    "TrackingTokenError",
    "parse_tracking_path",
    "token_tail",
    "tracking_url",
]

_VERSION = 2
_VERSIONS = (1, 2)
_MAX_CACHED_WORKSPACES = 1024
_SHORT_LENGTHS = tuple(bytes((length,)) for length in range(0x80))
_b2a_base64 = binascii.b2a_base64
_BLOCK = 64  # SHA-256 block size, for HMAC's pads
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_MAC_BYTES = 16
_DOMAIN = b"mailwright/tracking/v1\x00"
MAX_URL_BYTES = 4096
MAX_ID_BYTES = 200
MAX_KEY_ID_BYTES = 32
MIN_SECRET_BYTES = 32
# A token is never longer than its fields allow; anything longer is refused unread.
MAX_TOKEN_CHARS = 4 * (MAX_URL_BYTES + 3 * MAX_ID_BYTES + MAX_KEY_ID_BYTES + 64) // 3


class TrackingTokenError(ValueError):
    """A tracking token was refused; the subclass says why."""


class MalformedToken(TrackingTokenError):
    """The token is not a well-formed tracking token (truncated, bad encoding, bad field)."""


class ForgedToken(TrackingTokenError):
    """The token's signature does not verify, or it names a key we do not hold."""


class ExpiredToken(TrackingTokenError):
    """The token verified but its expiry has passed."""


class TokenKind(Enum):
    """What a token authorises, with the byte that encodes it and its URL path segment."""

    OPEN = "o"
    CLICK = "c"
    UNSUBSCRIBE = "u"

    @property
    def code(self) -> int:
        return ord(self.value)


_KINDS_BY_CODE = {kind.code: kind for kind in TokenKind}


@dataclass(frozen=True)
class TrackingClaims:
    """What a token says: whose send, which action, which target, until when, and the
    profile the send went to (empty for v1 tokens and sends to a bare address)."""

    workspace: str
    send_id: str
    kind: TokenKind
    expires_at: int
    url: str | None = None
    profile_id: str = ""

    def __post_init__(self) -> None:
        _check_text("workspace", self.workspace, MAX_ID_BYTES)
        _check_text("send_id", self.send_id, MAX_ID_BYTES)
        _check_optional_text("profile_id", self.profile_id, MAX_ID_BYTES)
        if self.expires_at < 0:
            raise ValueError("expires_at must be a unix time in seconds, not negative")
        if self.kind is TokenKind.CLICK:
            if not self.url:
                raise ValueError("url is required for a click token")
            _check_text("url", self.url, MAX_URL_BYTES)
        elif self.url is not None:
            raise ValueError(f"url is only carried by click tokens, not {self.kind.name}")


@dataclass(frozen=True)
class SigningKey:
    """One HMAC key: an id carried in the token, and a secret of at least 32 bytes."""

    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        _check_text("key_id", self.key_id, MAX_KEY_ID_BYTES)
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"secret of key {self.key_id!r} is {len(self.secret)} bytes;"
                f" at least {MIN_SECRET_BYTES} are required"
            )

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r}, secret=<{len(self.secret)} bytes>)"


class TrackingSigner:
    """Signs with the first key, verifies with any; keys are tried by the id in the token."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        ids = [key.key_id for key in keys]
        if len(set(ids)) != len(ids):
            raise ValueError(f"signing key ids must be unique, got {ids}")
        self._signing_id = keys[0].key_id.encode()
        self._macs = {key.key_id.encode(): _KeyedMac(key.secret) for key in keys}
        # Prefix and MAC state up to the workspace, per workspace: a send adds its id.
        self._workspaces: dict[str, tuple[bytes, _KeyedMac]] = {}

    @property
    def signing_key_id(self) -> str:
        return self._signing_id.decode()

    def sign(self, claims: TrackingClaims) -> str:
        """Return the token for `claims`, signed with the first key."""
        return self.for_send(claims.workspace, claims.send_id, claims.profile_id).sign(
            claims.kind, claims.expires_at, claims.url
        )

    def for_send(self, workspace: str, send_id: str, profile_id: str = "") -> SendSigner:
        """A signer for the tokens of one send, with its constant fields pre-hashed.

        `profile_id` is the recipient's profile ("" for a send to a bare address)."""
        known = self._workspaces.get(workspace)
        if known is None:
            _check_text("workspace", workspace, MAX_ID_BYTES)
            start = bytearray((_VERSION,))
            _put_field(start, self._signing_id)
            _put_field(start, workspace.encode())
            known = (bytes(start), self._macs[self._signing_id].extended(start))
            if len(self._workspaces) >= _MAX_CACHED_WORKSPACES:
                self._workspaces.clear()
            self._workspaces[workspace] = known
        send = send_id.encode() if isinstance(send_id, str) else b""
        profile = profile_id.encode() if isinstance(profile_id, str) else None
        if len(send) < 0x80 and profile is not None and len(profile) < 0x80 and send:
            # The common case, short ids: encoded from the table, checked by length.
            field = _SHORT_LENGTHS[len(send)] + send + _SHORT_LENGTHS[len(profile)] + profile
        else:
            _check_text("send_id", send_id, MAX_ID_BYTES)
            _check_optional_text("profile_id", profile_id, MAX_ID_BYTES)
            encoded = bytearray()
            _put_field(encoded, send)
            _put_field(encoded, profile or b"")
            field = bytes(encoded)
        inner = known[1].inner_state()
        inner.update(field)
        return SendSigner(known[0] + field, inner, known[1].outer_state)

    def verify(
        self,
        token: str,
        *,
        kind: TokenKind | None = None,
        now: float | None = None,
    ) -> TrackingClaims:
        """Return the claims of a genuine, unexpired token, or raise.

        `kind`, when given, must match the token's kind (a click token is no unsubscribe
        token). Raises `MalformedToken`, `ForgedToken` or `ExpiredToken`.
        """
        raw = _decode(token)
        if len(raw) < 7 + _MAC_BYTES:
            raise MalformedToken("token is too short")
        body, tag = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        version = body[0]
        if version not in _VERSIONS:
            raise MalformedToken(f"unknown token version {version}")
        key_id, position = _get_field(body, 1, MAX_KEY_ID_BYTES)
        workspace, position = _get_field(body, position, MAX_ID_BYTES)
        send_id, position = _get_field(body, position, MAX_ID_BYTES)
        profile_id = b""
        if version >= 2:
            profile_id, position = _get_field(body, position, MAX_ID_BYTES)
        if position >= len(body):
            raise MalformedToken("token is truncated")
        token_kind = _KINDS_BY_CODE.get(body[position])
        if token_kind is None:
            raise MalformedToken("unknown token kind")
        expires_at, position = _get_varint(body, position + 1)
        url, position = _get_field(body, position, MAX_URL_BYTES)
        if position != len(body):
            raise MalformedToken("token has trailing bytes")
        keyed = self._macs.get(key_id)
        if keyed is None:
            raise ForgedToken("token names a signing key that is not configured")
        if not hmac.compare_digest(keyed.extended(body).tag(b""), tag):
            raise ForgedToken("token signature does not verify")
        if kind is not None and token_kind is not kind:
            raise ForgedToken(f"token is a {token_kind.name} token, not {kind.name}")
        current = time.time() if now is None else now
        if current >= expires_at:
            raise ExpiredToken("token has expired")
        try:
            return TrackingClaims(
                workspace=workspace.decode(),
                send_id=send_id.decode(),
                kind=token_kind,
                expires_at=expires_at,
                url=url.decode() if token_kind is TokenKind.CLICK else None,
                profile_id=profile_id.decode(),
            )
        except (UnicodeDecodeError, ValueError) as error:
            raise MalformedToken(f"token carries an invalid field: {error}") from None


class _KeyedMac:
    """HMAC-SHA256 (RFC 2104) keyed once, over the domain prefix and any fixed prefix.

    The inner and outer hash states are computed once and copied per message, which is
    what `hmac` does too, minus its per-call Python layers: signing sits on the delivery
    path, once per tracked link. `tag` is the MAC truncated to 128 bits.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: bytes, *, _states: tuple[Any, Any] | None = None) -> None:
        if _states is not None:
            self._inner, self._outer = _states
            return
        key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + _DOMAIN)
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def extended(self, data: bytes | bytearray) -> _KeyedMac:
        inner = self._inner.copy()
        inner.update(data)
        return _KeyedMac(b"", _states=(inner, self._outer))

    def inner_state(self) -> Any:
        """A copy of the inner hash state, for a caller to extend."""
        return self._inner.copy()

    @property
    def outer_state(self) -> Any:
        """The outer hash state (never updated: each MAC copies it)."""
        return self._outer

    def tag(self, data: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        tag: bytes = outer.digest()
        return tag[:_MAC_BYTES]


def _sealed(prefix: bytes, tail: bytes, inner_state: Any, outer_state: Any) -> str:
    """The token `prefix + tail` and its MAC from the keyed hash states, base64url."""
    inner = inner_state.copy()
    inner.update(tail)
    outer = outer_state.copy()
    outer.update(inner.digest())
    token = prefix + tail + outer.digest()[:_MAC_BYTES]
    # One pass turns base64 into its URL-safe alphabet and drops the padding and the
    # newline: a token is unpadded base64url.
    return _b2a_base64(token).translate(_URLSAFE, b"=\n").decode()


class SendSigner:
    """Signs the tokens of one send (see `TrackingSigner.for_send`)."""

    __slots__ = ("_inner", "_outer", "_prefix")

    def __init__(self, prefix: bytes, inner: Any, outer: Any) -> None:
        self._prefix = prefix
        self._inner = inner
        self._outer = outer

    def sign(self, kind: TokenKind, expires_at: int, url: str | None = None) -> str:
        return self.bind(kind, expires_at).sign(url)

    def sign_tail(self, tail: bytes) -> str:
        """The token whose fields after the send's are `tail`, from `token_tail`.

        A batch encodes the tails that are the same for all its recipients (the open
        and unsubscribe tokens, a template's fixed links) once, and each recipient's
        token then costs only its HMAC and its base64.
        """
        return _sealed(self._prefix, tail, self._inner, self._outer)

    def sign_click(self, clicks: ClickTails, url: str) -> str:
        """The click token for `url` with the expiry of `clicks`: `sign_tail(clicks.tail(url))`
        in one step, for the innermost loop of a batch (once per tracked link)."""
        target = url.encode()
        length = len(target)
        if 0 < length < 0x80:
            tail = clicks.header + _SHORT_LENGTHS[length] + target
        else:
            tail = token_tail(_CLICK, clicks.expires_at, url)
        return _sealed(self._prefix, tail, self._inner, self._outer)

    def bind(self, kind: TokenKind, expires_at: int) -> BoundSigner:
        """A signer for tokens of one kind and expiry: the hot path of a batch."""
        return BoundSigner(self._prefix, _header(kind, expires_at), self._inner, self._outer, kind)


class BoundSigner:
    """Signs tokens of one send, kind and expiry (see `SendSigner.bind`).

    `sign` is the innermost loop of a batch (once per tracked link per recipient), so
    it computes the HMAC inline from the keyed states and encodes short fields from a
    table: the same bytes as `_KeyedMac.tag`, fewer Python calls.
    """

    __slots__ = ("_click", "_header", "_inner", "_kind", "_outer", "_prefix")

    def __init__(
        self, prefix: bytes, header: bytes, inner: Any, outer: Any, kind: TokenKind
    ) -> None:
        self._prefix = prefix
        self._header = header
        self._inner = inner
        self._outer = outer
        self._kind = kind
        self._click = kind is _CLICK

    def sign(self, url: str | None = None) -> str:
        if self._click:
            if not url:
                raise ValueError("url is required for a click token")
            target = url.encode()
            length = len(target)
            if length < 0x80:
                tail = self._header + _SHORT_LENGTHS[length] + target
            elif length > MAX_URL_BYTES:
                raise ValueError(f"url is longer than {MAX_URL_BYTES} bytes")
            else:
                encoded = bytearray(self._header)
                _put_field(encoded, target)
                tail = bytes(encoded)
        elif url is not None:
            raise ValueError(f"url is only carried by click tokens, not {self._kind.name}")
        else:
            tail = self._header + _SHORT_LENGTHS[0]
        return _sealed(self._prefix, tail, self._inner, self._outer)


_CLICK = TokenKind.CLICK


def token_tail(kind: TokenKind, expires_at: int, url: str | None = None) -> bytes:
    """The encoded fields of a token after its send's (kind, expiry and, for a click,
    the URL), for `SendSigner.sign_tail`. Raises `ValueError` as signing would."""
    if kind is _CLICK:
        if not url:
            raise ValueError("url is required for a click token")
        target = url.encode()
        if len(target) > MAX_URL_BYTES:
            raise ValueError(f"url is longer than {MAX_URL_BYTES} bytes")
        encoded = bytearray(_header(kind, expires_at))
        _put_field(encoded, target)
        return bytes(encoded)
    if url is not None:
        raise ValueError(f"url is only carried by click tokens, not {kind.name}")
    return _header(kind, expires_at) + _SHORT_LENGTHS[0]


class ClickTails:
    """Encodes the tails of click tokens of one expiry (see `token_tail`): a batch's
    innermost loop, once per tracked link per recipient."""

    __slots__ = ("expires_at", "header")

    def __init__(self, expires_at: int) -> None:
        self.expires_at = expires_at
        # Kind and expiry, encoded: what every click tail of this expiry starts with.
        self.header = _header(_CLICK, expires_at)

    def tail(self, url: str) -> bytes:
        target = url.encode()
        length = len(target)
        if 0 < length < 0x80:
            return self.header + _SHORT_LENGTHS[length] + target
        return token_tail(_CLICK, self.expires_at, url)


@functools.lru_cache(maxsize=64)
def _header(kind: TokenKind, expires_at: int) -> bytes:
    """Kind and expiry, encoded; a batch's tokens share a handful of these."""
    if expires_at < 0:
        raise ValueError("expires_at must be a unix time in seconds, not negative")
    header = bytearray((kind.code,))
    _put_varint(header, expires_at)
    return bytes(header)


def tracking_url(base_url: str, kind: TokenKind, token: str) -> str:
    """The public URL of a token: `{base}/t/o/{token}.gif`, `/t/c/{token}`, `/u/{token}`."""
    base = base_url.rstrip("/")
    if kind is TokenKind.OPEN:
        return f"{base}/t/o/{token}.gif"
    if kind is TokenKind.CLICK:
        return f"{base}/t/c/{token}"
    return f"{base}/u/{token}"


def parse_tracking_path(path: str) -> tuple[TokenKind, str]:
    """Split a request path written by `tracking_url` into its kind and token.

    Raises `MalformedToken` for any other path, so the edge can answer 404 without a
    second parser.
    """
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "t" and parts[1] == "o" and parts[2].endswith(".gif"):
        return TokenKind.OPEN, parts[2][: -len(".gif")]
    if len(parts) == 3 and parts[0] == "t" and parts[1] == "c":
        return TokenKind.CLICK, parts[2]
    if len(parts) == 2 and parts[0] == "u":
        return TokenKind.UNSUBSCRIBE, parts[1]
    raise MalformedToken("not a tracking path")


def _check_text(field: str, value: str, limit: int) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string")
    if len(value.encode()) > limit:
        raise ValueError(f"{field} is longer than {limit} bytes")


def _check_optional_text(field: str, value: str, limit: int) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string")
    if len(value.encode()) > limit:
        raise ValueError(f"{field} is longer than {limit} bytes")


def _decode(token: str) -> bytes:
    if not isinstance(token, str) or not token:
        raise MalformedToken("token is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedToken("token is too long")
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken("token is not URL-safe base64") from None


def _put_varint(out: bytearray, value: int) -> None:
    if value < 0x80:
        out.append(value)
        return
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _get_varint(data: bytes, position: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 64, 7):
        if position >= len(data):
            raise MalformedToken("token is truncated")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
    raise MalformedToken("token carries an oversized number")


def _put_field(out: bytearray, value: bytes) -> None:
    _put_varint(out, len(value))
    out += value


def _get_field(data: bytes, position: int, limit: int) -> tuple[bytes, int]:
    length, position = _get_varint(data, position)
    if length > limit:
        raise MalformedToken("token carries an oversized field")
    end = position + length
    if end > len(data):
        raise MalformedToken("token is truncated")
    return data[position:end], end
