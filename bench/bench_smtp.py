"""The SMTP provider's own cost: messages/s through `SmtpEmailProvider` to a sink in
another process, against a bare aiosmtplib loop sending the same MIME bytes over one
reused connection, measured in the same run; and what DKIM signing costs.

--quick: 150 messages (30 signed), best of two rounds (full run: 1,000 and 200, best of
three)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.common import Result
from mailwright.connectors import OutboundMessage
from mailwright_smtp.config import SmtpConfig
from mailwright_smtp.message import prepare
from mailwright_smtp.provider import SmtpEmailProvider
from mailwright_smtp.sink import SinkProcess

HTML = (
    "<html><body>" + "<p>Hello Ada, here is what you left in your cart.</p>" * 40 + "</body></html>"
)


def messages(count: int) -> list[OutboundMessage]:
    return [
        OutboundMessage(
            send_id=f"send-{n}",
            idempotency_key=f"bench:{n}",
            from_address="Shop <news@shop.example>",
            to_address=f"person{n}@example.org",
            subject="Your cart misses you",
            html=HTML,
            text="Hello Ada, here is what you left in your cart.",
        )
        for n in range(count)
    ]


@contextmanager
def sink_process(directory: Path) -> Iterator[int]:
    with SinkProcess(directory) as sink:
        yield sink.port


async def bare_loop(port: int, batch: list[OutboundMessage]) -> float:
    prepared = [prepare(m, envelope_from=None, message_id_domain=None) for m in batch]
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    started = time.perf_counter()
    for item in prepared:
        await client.sendmail(item.envelope_from, [item.recipient], item.data)
    elapsed = time.perf_counter() - started
    await client.quit()
    return len(prepared) / elapsed


async def through_provider(
    config: SmtpConfig, batch: list[OutboundMessage], concurrent: bool
) -> float:
    provider = SmtpEmailProvider(config)
    await provider.send(batch[0])  # connect (and start signing workers) outside the clock
    started = time.perf_counter()
    if concurrent:
        await provider.send_batch(batch[1:])
    else:
        for message in batch[1:]:
            await provider.send(message)
    elapsed = time.perf_counter() - started
    await provider.aclose()
    return (len(batch) - 1) / elapsed


def best_of(rounds: int, *measures: Callable[[], float]) -> list[float]:
    """Each measure's best rate over `rounds`, interleaved so drift hits them alike."""
    best = [0.0] * len(measures)
    for _ in range(rounds):
        for index, measure in enumerate(measures):
            best[index] = max(best[index], measure())
    return best


def run(quick: bool) -> list[Result]:
    count = 150 if quick else 1000
    signed_count = 30 if quick else 200
    rounds = 2 if quick else 3
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with tempfile.TemporaryDirectory() as directory, sink_process(Path(directory)) as port:
        plain: dict[str, Any] = {"host": "127.0.0.1", "port": port, "security": "none"}
        dkim: dict[str, Any] = {
            **plain,
            "dkim_domain": "shop.example",
            "dkim_selector": "bench",
            "dkim_private_key": pem,
        }

        def provider(count: int, concurrent: bool = False, **options: Any) -> Callable[[], float]:
            config = SmtpConfig(**{**plain, **options})
            return lambda: asyncio.run(through_provider(config, messages(count + 1), concurrent))

        bare, one, pooled = best_of(
            rounds,
            lambda: asyncio.run(bare_loop(port, messages(count))),
            provider(count, pool_size=1),
            provider(count, concurrent=True, pool_size=4),
        )
        unsigned, signed, workers = best_of(
            rounds,
            provider(signed_count, concurrent=True, pool_size=4),
            provider(signed_count, concurrent=True, pool_size=4, **dkim),
            provider(signed_count, concurrent=True, pool_size=4, dkim_processes=2, **dkim),
        )
    against_bare = "msg/s bare aiosmtplib, one connection"
    return [
        Result(
            "smtp provider, one connection", one, "msg/s", bare, against_bare, one / bare, ">= 0.8"
        ),
        Result("smtp provider, pool of 4", pooled, "msg/s", bare, against_bare, pooled / bare, "-"),
        Result(
            "smtp DKIM signing in process",
            signed,
            "msg/s",
            unsigned,
            "msg/s unsigned",
            signed / unsigned,
            "-",
        ),
        Result(
            "smtp DKIM signing, 2 workers",
            workers,
            "msg/s",
            unsigned,
            "msg/s unsigned",
            workers / unsigned,
            "-",
        ),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(
            f"{r.name}: {r.value:.0f} {r.unit} vs {r.baseline:.0f} {r.baseline_unit}"
            f" = {r.ratio:.2f} (goal {r.goal})"
        )
