"""Tracking tokens: what the render service signs, the ingest edge must verify and nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.tracking import (
    ClickTails,
    ExpiredToken,
    ForgedToken,
    MalformedToken,
    SigningKey,
    TokenKind,
    TrackingClaims,
    TrackingSigner,
    parse_tracking_path,
    token_tail,
    tracking_url,
)

NOW = 1_700_000_000
KEY_A = SigningKey("a", b"A" * 32)
KEY_B = SigningKey("b", b"B" * 32)
# A click token for (ws_1, send_42, prof_7, https://a.b/c?d=e), as signed by KEY_A.
GOLDEN_V2_CLICK = (
    "AgFhBHdzXzEHc2VuZF80MgZwcm9mXzdjvOLPqgYRaHR0cHM6Ly9hLmIvYz9kPWVNf7bYTAe0LQnN4w1G-eDg"
)


def click(
    url: str = "https://shop.example/p/1?utm=x", expires_at: int = NOW + 3600
) -> TrackingClaims:
    return TrackingClaims("ws_1", "send_42", TokenKind.CLICK, expires_at, url)


def test_a_signed_click_token_verifies_to_its_claims() -> None:
    signer = TrackingSigner([KEY_A])
    token = signer.sign(click())
    assert signer.verify(token, kind=TokenKind.CLICK, now=NOW) == click()


def test_tokens_are_url_safe_without_padding() -> None:
    token = TrackingSigner([KEY_A]).sign(click("https://x.example/?a=1&b=~ü"))
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_open_and_unsubscribe_tokens_carry_no_url() -> None:
    signer = TrackingSigner([KEY_A])
    for kind in (TokenKind.OPEN, TokenKind.UNSUBSCRIBE):
        claims = TrackingClaims("ws_1", "send_42", kind, NOW + 60)
        assert signer.verify(signer.sign(claims), now=NOW).url is None


def test_a_click_token_needs_a_url() -> None:
    with pytest.raises(ValueError, match="url is required"):
        TrackingClaims("ws_1", "send_42", TokenKind.CLICK, NOW)


def test_an_expired_token_is_refused() -> None:
    signer = TrackingSigner([KEY_A])
    token = signer.sign(click(expires_at=NOW))
    with pytest.raises(ExpiredToken):
        signer.verify(token, now=NOW)


def test_a_token_signed_with_an_unknown_key_is_forged() -> None:
    token = TrackingSigner([KEY_B]).sign(click())
    with pytest.raises(ForgedToken, match="key"):
        TrackingSigner([KEY_A]).verify(token, now=NOW)


def test_a_token_with_a_forged_key_id_but_wrong_secret_is_forged() -> None:
    impostor = SigningKey("a", b"Z" * 32)
    token = TrackingSigner([impostor]).sign(click())
    with pytest.raises(ForgedToken, match="signature"):
        TrackingSigner([KEY_A]).verify(token, now=NOW)


def test_rotation_signs_with_the_first_key_and_verifies_with_any() -> None:
    old = TrackingSigner([KEY_A]).sign(click())
    rotated = TrackingSigner([KEY_B, KEY_A])
    assert rotated.verify(old, now=NOW).send_id == "send_42"
    assert rotated.verify(rotated.sign(click()), now=NOW).send_id == "send_42"
    with pytest.raises(ForgedToken):
        TrackingSigner([KEY_A]).verify(rotated.sign(click()), now=NOW)


def test_a_token_of_another_kind_is_refused() -> None:
    signer = TrackingSigner([KEY_A])
    token = signer.sign(TrackingClaims("ws_1", "send_42", TokenKind.OPEN, NOW + 60))
    with pytest.raises(ForgedToken, match="OPEN token"):
        signer.verify(token, kind=TokenKind.UNSUBSCRIBE, now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", "!!!!", "AQ", "a" * 20_000, base64.urlsafe_b64encode(b"\x09" * 40).decode()],
)
def test_garbage_is_malformed(token: str) -> None:
    with pytest.raises(MalformedToken):
        TrackingSigner([KEY_A]).verify(token, now=NOW)


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=255))
def test_changing_any_byte_of_a_token_is_never_accepted(position: int, flip: int) -> None:
    signer = TrackingSigner([KEY_A])
    raw = bytearray(base64.urlsafe_b64decode(signer.sign(click()) + "=="))
    index = position % len(raw)
    raw[index] ^= flip or 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises((ForgedToken, MalformedToken)):
        signer.verify(tampered, now=NOW)


@given(
    workspace=st.text(min_size=1, max_size=40),
    send_id=st.text(min_size=1, max_size=40),
    url=st.text(min_size=1, max_size=300),
    expires=st.integers(min_value=NOW + 1, max_value=2**40),
    profile_id=st.text(max_size=40),
)
def test_any_claims_round_trip(
    workspace: str, send_id: str, url: str, expires: int, profile_id: str
) -> None:
    claims = TrackingClaims(workspace, send_id, TokenKind.CLICK, expires, url, profile_id)
    signer = TrackingSigner([KEY_A])
    assert signer.verify(signer.sign(claims), now=NOW) == claims


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        SigningKey("k", b"short")


def test_key_repr_hides_the_secret() -> None:
    assert "AAAA" not in repr(KEY_A)


def test_urls_and_paths_round_trip() -> None:
    for kind in TokenKind:
        url = tracking_url("https://t.example/", kind, "TOKEN")
        path = url.removeprefix("https://t.example")
        assert parse_tracking_path(path) == (kind, "TOKEN")
    assert tracking_url("https://t.example", TokenKind.OPEN, "X").endswith("/t/o/X.gif")
    with pytest.raises(MalformedToken):
        parse_tracking_path("/t/x/abc")


def test_a_send_signer_makes_the_same_tokens_as_signing_claims() -> None:
    signer = TrackingSigner([KEY_A])
    per_send = signer.for_send("ws_1", "send_42")
    assert per_send.sign(TokenKind.CLICK, NOW + 3600, click().url) == signer.sign(click())
    with pytest.raises(ValueError, match="url is required"):
        per_send.sign(TokenKind.CLICK, NOW)
    with pytest.raises(ValueError, match="only carried by click"):
        per_send.sign(TokenKind.OPEN, NOW, "https://x.example")


@given(
    send_id=st.text(min_size=1, max_size=80),
    profile_id=st.text(max_size=80),
    url=st.text(min_size=1, max_size=1200),
)
def test_tokens_from_encoded_tails_are_the_tokens_of_their_claims(
    send_id: str, profile_id: str, url: str
) -> None:
    signer = TrackingSigner([KEY_A])
    per_send = signer.for_send("ws_1", send_id, profile_id)
    expires = NOW + 3600
    claims = TrackingClaims("ws_1", send_id, TokenKind.CLICK, expires, url, profile_id)
    assert per_send.sign_tail(ClickTails(expires).tail(url)) == signer.sign(claims)
    assert per_send.sign_tail(token_tail(TokenKind.CLICK, expires, url)) == signer.sign(claims)
    for kind in (TokenKind.OPEN, TokenKind.UNSUBSCRIBE):
        claims = TrackingClaims("ws_1", send_id, kind, expires, profile_id=profile_id)
        assert per_send.sign_tail(token_tail(kind, expires)) == signer.sign(claims)


def test_tails_refuse_what_signing_refuses() -> None:
    with pytest.raises(ValueError, match="url is required"):
        token_tail(TokenKind.CLICK, NOW)
    with pytest.raises(ValueError, match="only carried by click"):
        token_tail(TokenKind.OPEN, NOW, "https://x.example")
    with pytest.raises(ValueError, match="longer than"):
        ClickTails(NOW).tail("https://x.example/" + "a" * 5000)
    with pytest.raises(ValueError, match="url is required"):
        ClickTails(NOW).tail("")
    with pytest.raises(ValueError, match="send_id"):
        TrackingSigner([KEY_A]).for_send("ws_1", "")
    with pytest.raises(ValueError, match="profile_id"):
        TrackingSigner([KEY_A]).for_send("ws_1", "s", "p" * 201)


@pytest.mark.parametrize("secret", [b"A" * 32, bytes(range(100))])
def test_the_mac_is_standard_hmac_sha256_truncated(secret: bytes) -> None:
    import hashlib
    import hmac

    signer = TrackingSigner([SigningKey("a", secret)])
    raw = base64.urlsafe_b64decode(signer.sign(click()) + "==")
    body, tag = raw[:-16], raw[-16:]
    expected = hmac.new(secret, b"mailwright/tracking/v1\x00" + body, hashlib.sha256)
    assert tag == expected.digest()[:16]


def test_tokens_carry_the_profile_id() -> None:
    signer = TrackingSigner([KEY_A])
    for kind in (TokenKind.OPEN, TokenKind.UNSUBSCRIBE):
        token = signer.for_send("ws_1", "send_42", "prof_7").sign(kind, NOW + 60)
        claims = signer.verify(token, kind=kind, now=NOW)
        assert (claims.send_id, claims.profile_id) == ("send_42", "prof_7")
    token = signer.for_send("ws_1", "send_42", "prof_7").sign(
        TokenKind.CLICK, NOW + 60, "https://a.b/"
    )
    assert signer.verify(token, now=NOW) == TrackingClaims(
        "ws_1", "send_42", TokenKind.CLICK, NOW + 60, "https://a.b/", "prof_7"
    )
    # Without a profile (a send to a bare address) the field is empty.
    assert signer.verify(signer.sign(click()), now=NOW).profile_id == ""


def test_a_token_cannot_be_moved_to_another_profile() -> None:
    signer = TrackingSigner([KEY_A])
    raw = base64.urlsafe_b64decode(
        signer.for_send("ws_1", "send_42", "prof_7").sign(TokenKind.OPEN, NOW + 60) + "=="
    )
    moved = raw.replace(b"prof_7", b"prof_8")
    with pytest.raises(ForgedToken):
        signer.verify(base64.urlsafe_b64encode(moved).rstrip(b"=").decode(), now=NOW)


def _v1_token(secret: bytes, kind: TokenKind, expires_at: int, url: str = "") -> str:
    """A version-1 token as signers before the profile id wrote them."""

    def field(value: bytes) -> bytes:
        assert len(value) < 0x80
        return bytes((len(value),)) + value

    expiry = bytearray()
    value = expires_at
    while True:
        byte, value = value & 0x7F, value >> 7
        expiry.append(byte | (0x80 if value else 0))
        if not value:
            break
    body = (
        b"\x01"
        + field(b"a")
        + field(b"ws_1")
        + field(b"send_42")
        + bytes((ord(kind.value),))
        + bytes(expiry)
        + field(url.encode())
    )
    mac = hmac.new(secret, b"mailwright/tracking/v1\x00" + body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + mac[:16]).rstrip(b"=").decode()


def test_version_1_tokens_still_verify() -> None:
    signer = TrackingSigner([KEY_A])
    click_token = _v1_token(KEY_A.secret, TokenKind.CLICK, NOW + 60, "https://a.b/")
    assert signer.verify(click_token, now=NOW) == TrackingClaims(
        "ws_1", "send_42", TokenKind.CLICK, NOW + 60, "https://a.b/"
    )
    open_token = _v1_token(KEY_A.secret, TokenKind.OPEN, NOW + 60)
    assert signer.verify(open_token, kind=TokenKind.OPEN, now=NOW).profile_id == ""
    with pytest.raises(ForgedToken):
        TrackingSigner([SigningKey("a", b"Z" * 32)]).verify(open_token, now=NOW)


@given(st.integers(min_value=1, max_value=300))
def test_a_token_is_the_unpadded_base64url_of_its_bytes(length: int) -> None:
    # Every length of URL, so every padding case of base64 (none, one, two) is covered.
    signer = TrackingSigner([KEY_A])
    url = "https://a.b/" + "x" * length
    token = signer.for_send("ws_1", "send_42", "prof_7").sign(TokenKind.CLICK, NOW + 60, url)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert token == base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert signer.verify(token, now=NOW).url == url


def test_a_version_2_token_is_written_as_it_always_was() -> None:
    # A token written before this code: the format and its MAC must never drift.
    signer = TrackingSigner([KEY_A])
    token = signer.for_send("ws_1", "send_42", "prof_7").sign(
        TokenKind.CLICK, NOW + 60, "https://a.b/c?d=e"
    )
    assert token == GOLDEN_V2_CLICK


@given(st.text(min_size=1, max_size=300))
def test_a_click_signed_in_one_step_is_the_token_of_its_tail(path: str) -> None:
    signer = TrackingSigner([KEY_A]).for_send("ws_1", "send_42", "prof_7")
    clicks = ClickTails(NOW + 60)
    url = "https://a.b/" + path
    assert signer.sign_click(clicks, url) == signer.sign_tail(clicks.tail(url))
