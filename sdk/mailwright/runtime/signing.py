"""The keys that sign tracking and unsubscribe tokens, read from the settings.

The render service signs every tracked link, open pixel and unsubscribe URL; the ingest
edge verifies them. Both build their `TrackingSigner` here, so they agree on the keys.

`MAILWRIGHT_SIGNING_KEYS` is a comma-separated list; the first key signs and every key
verifies, so a key is rotated by putting the new one first and dropping the old one once
its tokens have expired. Each entry is `key_id:secret` or a bare secret, whose id is
then `k` and the first 8 hex digits of the SHA-256 of the secret (a fingerprint, not
the secret). Secrets are at least 32 bytes.

When the list is empty (the embedded default), one key is derived from the deployment's
auth secret (`MAILWRIGHT_AUTH_SECRET`, or the random one kept in `data_dir/auth-secret`):
HMAC-SHA256 of the auth secret over a fixed label, with the id `auth`. It is stable for
as long as the auth secret is, and every process of one deployment derives the same key.
Rotating the auth secret therefore invalidates the links of mail already sent; set
explicit signing keys in production.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from mailwright.runtime.auth import load_or_create_secret
from mailwright.runtime.settings import Settings, SettingsError
from mailwright.tracking import SigningKey, TrackingSigner

DERIVED_KEY_ID = "auth"
_DERIVATION_LABEL = b"mailwright/tracking-signing-key/v1"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def parse_signing_key(entry: str, position: int = 0) -> SigningKey:
    """One entry of `MAILWRIGHT_SIGNING_KEYS`: `key_id:secret` or a bare secret."""
    text = entry.strip()
    key_id, separator, secret = text.partition(":")
    if not separator or not _KEY_ID.match(key_id):
        secret = text
        key_id = "k" + hashlib.sha256(secret.encode()).hexdigest()[:8]
    try:
        return SigningKey(key_id, secret.encode())
    except ValueError as error:
        raise SettingsError(f"MAILWRIGHT_SIGNING_KEYS (entry {position + 1}): {error}") from None


def derived_signing_key(auth_secret: str) -> SigningKey:
    """The key derived from the auth secret when no signing keys are configured."""
    secret = hmac.digest(auth_secret.encode(), _DERIVATION_LABEL, "sha256")
    return SigningKey(DERIVED_KEY_ID, secret)


def signing_keys(settings: Settings) -> list[SigningKey]:
    """The configured keys in order (the first signs), or the one derived key."""
    if settings.signing_keys:
        keys = [parse_signing_key(entry, i) for i, entry in enumerate(settings.signing_keys)]
        ids = [key.key_id for key in keys]
        if len(set(ids)) != len(ids):
            raise SettingsError(f"MAILWRIGHT_SIGNING_KEYS: key ids must be unique, got {ids}")
        return keys
    return [derived_signing_key(load_or_create_secret(settings.auth_secret, settings.data_dir))]


def tracking_signer(settings: Settings) -> TrackingSigner:
    """The signer of this deployment's tracking tokens (see the module docstring)."""
    return TrackingSigner(signing_keys(settings))
