"""Write keys of the HTTP tracking API: minted from the deployment secret, stored hashed.

A key is `mwk_` and 40 URL-safe characters of HMAC-SHA256(secret, workspace, key id).
Only its SHA-256 is stored (to find the key a request carries) with a short prefix (to
recognise it in a list); the key itself can be derived again from its id, which is how a
retried `CreateWriteKey` (same `request_id`) returns the same key without the request log
keeping a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

PREFIX = "mwk_"
_LABEL = b"mailwright/write-key/v1\x00"


class WriteKeyMinter:
    def __init__(self, secret: str) -> None:
        self._mac = hmac.new(secret.encode(), _LABEL, hashlib.sha256)

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex[:20]

    def key(self, workspace: str, key_id: str) -> str:
        mac = self._mac.copy()
        mac.update(f"{workspace}\x00{key_id}".encode())
        return PREFIX + base64.urlsafe_b64encode(mac.digest()).decode()[:40]


def key_prefix(key: str) -> str:
    return key[: len(PREFIX) + 6]
