"""A bus consumer in a process of its own, for the test that kills it with SIGKILL.

Usage: python bus_worker.py URL NAMESPACE GROUP TOPIC

It prints `ready` once it holds its partitions, then `got <id>` for each message it
receives, and never finishes handling one: every message it reads stays pending.
"""

from __future__ import annotations

import asyncio
import sys

from mailwright.runtime.bus import Message, connect
from mailwright.testing.bus import FAST_CONSUMER_OPTIONS


async def main(url: str, namespace: str, group: str, topic: str) -> None:
    bus = await connect(url, namespace=namespace, partitions=4)
    never = asyncio.Event()

    async def handle(message: Message) -> None:
        print(f"got {message.id}", flush=True)
        await never.wait()

    subscription = bus.subscribe(
        topic, group, handle, consumer="doomed", options=FAST_CONSUMER_OPTIONS
    )
    await subscription.start()
    print("ready", flush=True)
    await never.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
