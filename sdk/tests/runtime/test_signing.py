"""Tracking keys from the settings: explicit keys, rotation, and the derived default."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwright.runtime.settings import Settings, SettingsError
from mailwright.runtime.signing import DERIVED_KEY_ID, signing_keys, tracking_signer
from mailwright.tracking import ForgedToken, TokenKind, TrackingClaims

CLAIMS = TrackingClaims("acme", "send-1", TokenKind.OPEN, 2_000_000_000)


def _settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(data_dir=tmp_path, **fields)  # type: ignore[arg-type]


def test_first_configured_key_signs_and_every_key_verifies(tmp_path: Path) -> None:
    old = tracking_signer(_settings(tmp_path, signing_keys=["old:" + "o" * 32]))
    rotated = tracking_signer(
        _settings(tmp_path, signing_keys=["new:" + "n" * 32, "old:" + "o" * 32])
    )
    assert rotated.signing_key_id == "new"
    assert rotated.verify(old.sign(CLAIMS)) == CLAIMS


def test_a_bare_secret_gets_a_fingerprint_id_not_the_secret(tmp_path: Path) -> None:
    secret = "s" * 40
    (key,) = signing_keys(_settings(tmp_path, signing_keys=[secret]))
    assert key.key_id.startswith("k")
    assert len(key.key_id) == 9
    assert secret not in key.key_id


def test_a_short_secret_is_refused_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MAILWRIGHT_SIGNING_KEYS"):
        signing_keys(_settings(tmp_path, signing_keys=["k1:short"]))


def test_duplicate_key_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unique"):
        signing_keys(_settings(tmp_path, signing_keys=["a:" + "x" * 32, "a:" + "y" * 32]))


def test_without_keys_one_is_derived_from_the_auth_secret(tmp_path: Path) -> None:
    first = tracking_signer(_settings(tmp_path, auth_secret="a" * 48))
    again = tracking_signer(_settings(tmp_path / "elsewhere", auth_secret="a" * 48))
    assert first.signing_key_id == DERIVED_KEY_ID
    assert again.verify(first.sign(CLAIMS)) == CLAIMS


def test_the_derived_key_changes_with_the_auth_secret(tmp_path: Path) -> None:
    token = tracking_signer(_settings(tmp_path, auth_secret="a" * 48)).sign(CLAIMS)
    with pytest.raises(ForgedToken):
        tracking_signer(_settings(tmp_path, auth_secret="b" * 48)).verify(token)


def test_the_embedded_default_derives_from_the_secret_file_and_stays_stable(
    tmp_path: Path,
) -> None:
    token = tracking_signer(_settings(tmp_path)).sign(CLAIMS)
    assert (tmp_path / "auth-secret").exists()
    assert tracking_signer(_settings(tmp_path)).verify(token) == CLAIMS
