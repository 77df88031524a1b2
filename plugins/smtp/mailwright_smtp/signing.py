"""DKIM signing (RFC 6376) with dkimpy, in this process or in worker processes.

dkimpy's RSA is pure Python (about 9 ms for a 2048-bit signature), so a relay that
sends fast can give signing to worker processes (`dkim_processes`); signing stays off
the event loop either way.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from email.parser import BytesHeaderParser

import dkim

from mailwright.connectors import ErrorKind, ProviderError

# Headers that must appear at most once: signed one time more than they occur, so that
# a copy added in transit breaks the signature instead of being shown to the reader.
_SINGLETONS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
)


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    private_key_pem: bytes
    headers: tuple[str, ...]

    def __repr__(self) -> str:
        return f"DkimKey(domain={self.domain!r}, selector={self.selector!r})"


def headers_to_sign(data: bytes, wanted: tuple[str, ...]) -> list[bytes]:
    """The `h=` list: each wanted header once per occurrence, singletons once more."""
    head = data.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    present = [name.lower() for name in BytesHeaderParser().parsebytes(head)]
    chosen: list[bytes] = []
    for name in wanted:
        count = present.count(name)
        extra = 1 if name in _SINGLETONS else 0
        chosen.extend([name.encode()] * (count + extra if count else 0))
    return chosen


def sign(data: bytes, key: DkimKey) -> bytes:
    """`data` with a `DKIM-Signature` header prepended (relaxed/relaxed canonicalisation)."""
    try:
        signature = dkim.sign(
            data,
            key.selector.encode(),
            key.domain.encode(),
            key.private_key_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=headers_to_sign(data, key.headers),
        )
    except dkim.DKIMException as error:
        raise ProviderError(ErrorKind.INVALID, f"DKIM signing failed: {error}") from None
    return bytes(signature) + data


class Signer:
    """Signs messages with one key, off the event loop."""

    def __init__(self, key: DkimKey, processes: int = 0) -> None:
        self.key = key
        self._processes = processes
        self._executor: Executor | None = None

    async def sign(self, data: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        if self._processes == 0:
            return await asyncio.to_thread(sign, data, self.key)
        if self._executor is None:
            # spawn, not fork: this process runs threads and an event loop.
            self._executor = ProcessPoolExecutor(
                self._processes, mp_context=multiprocessing.get_context("spawn")
            )
        return await loop.run_in_executor(self._executor, sign, data, self.key)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
