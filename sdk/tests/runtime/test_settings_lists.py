"""List settings read from the environment as comma-separated values, as a Kubernetes Secret
or ConfigMap holds them."""

from __future__ import annotations

import pytest

from mailwright.runtime.settings import load_settings


def test_signing_keys_are_read_comma_separated_first_one_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILWRIGHT_SIGNING_KEYS", "new-key, old-key,")

    assert load_settings().signing_keys == ["new-key", "old-key"]


def test_plugins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_PLUGINS", "smtp,files")

    assert load_settings().plugins == ["smtp", "files"]


def test_one_signing_key_is_a_list_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_SIGNING_KEYS", "only-key")

    assert load_settings().signing_keys == ["only-key"]
