"""Tokens carry a workspace and scopes; forged, expired and foreign tokens are refused."""

from __future__ import annotations

import time

import jwt
import pytest

from mailwright.errors import PermissionDenied, Unauthenticated
from mailwright.runtime.auth import TokenAuthority

SECRET = "x" * 40


def test_a_token_round_trips_its_workspace_and_scopes() -> None:
    authority = TokenAuthority(SECRET)
    principal = authority.verify(authority.issue("acme", ["events:write", "profiles:read"]))
    assert principal.workspace == "acme"
    assert principal.allows_scope("events:write")
    assert not principal.allows_scope("profiles:delete")


def test_a_family_wildcard_grants_every_verb_of_the_family() -> None:
    authority = TokenAuthority(SECRET)
    principal = authority.verify(authority.issue("acme", ["segments:*"]))
    assert principal.allows_scope("segments:write")
    assert not principal.allows_scope("templates:read")


def test_a_token_signed_with_another_secret_is_unauthenticated() -> None:
    token = TokenAuthority("y" * 40).issue("acme", ["*"])
    with pytest.raises(Unauthenticated):
        TokenAuthority(SECRET).verify(token)


def test_an_expired_token_is_unauthenticated() -> None:
    authority = TokenAuthority(SECRET)
    token = authority.issue("acme", ["*"], ttl_seconds=-1)
    with pytest.raises(Unauthenticated, match="expired"):
        authority.verify(token)


def test_a_token_is_valid_only_for_its_workspace() -> None:
    authority = TokenAuthority(SECRET)
    principal = authority.verify(authority.issue("acme", ["*"]))
    principal.check("acme", "events:write")
    with pytest.raises(PermissionDenied, match="globex"):
        principal.check("globex")


def test_unknown_scopes_are_refused_at_issue() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        TokenAuthority(SECRET).issue("acme", ["events:delete-everything"])


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 characters"):
        TokenAuthority("short")


def test_the_authorization_header_must_be_bearer() -> None:
    authority = TokenAuthority(SECRET)
    with pytest.raises(Unauthenticated, match="Bearer"):
        authority.verify_header(f"Basic {authority.issue('acme', ['*'])}")
    with pytest.raises(Unauthenticated, match="missing"):
        authority.verify_header(None)
    assert authority.verify_header(f"Bearer {authority.issue('acme', ['*'])}").workspace == "acme"


def test_issue_time_is_recorded() -> None:
    authority = TokenAuthority(SECRET)
    before = int(time.time())
    principal = authority.verify(authority.issue("acme", ["*"], subject="checkout"))
    assert principal.subject == "checkout"
    assert principal.token_id
    assert before <= int(time.time())


def test_a_previous_secret_still_verifies_during_rotation() -> None:
    old = TokenAuthority("o" * 40)
    rotated = TokenAuthority("n" * 40, previous=["o" * 40])
    assert rotated.verify(old.issue("acme", ["*"])).workspace == "acme"
    with pytest.raises(Unauthenticated):
        TokenAuthority("n" * 40).verify(old.issue("acme", ["*"]))


def test_a_verified_token_expires_even_when_remembered() -> None:
    authority = TokenAuthority(SECRET)
    token = authority.issue("acme", ["*"], ttl_seconds=1)
    first = authority.verify(token)
    assert authority.verify(token) is first  # remembered, not decoded again
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(Unauthenticated, match="expired"):
        authority.verify(token)


def test_a_remembered_token_does_not_cover_a_tampered_copy() -> None:
    authority = TokenAuthority(SECRET)
    token = authority.issue("acme", ["profiles:read"])
    authority.verify(token)
    header, _, signature = token.split(".")
    forged = TokenAuthority("y" * 40).issue("acme", ["*"]).split(".")[1]
    with pytest.raises(Unauthenticated):
        authority.verify(f"{header}.{forged}.{signature}")
