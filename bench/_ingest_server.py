"""The ingest service alone, for `bench_ingest`: started in its own process so that its CPU
time can be read apart from the client's. Prints `{"port": …, "token": …}` once serving
and stops when its standard input closes.

    python bench/_ingest_server.py DATA_DIR REDIS_URL NAMESPACE
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings


async def main(data_dir: str, redis_url: str, namespace: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = Settings(
        data_dir=Path(data_dir),
        grpc_port=0,
        http_port=0,
        auth_secret="b" * 48,
        bus_url=redis_url,
        namespace=namespace,
        plugins=[],
        services={"ingest": {"rate_limit_per_second": 0}},
    )
    platform = Platform(settings, resolve_services(["ingest"]))
    await platform.start()
    assert platform.runtime is not None
    token = platform.runtime.authority.issue("bench", ["events:write"])
    print(json.dumps({"port": platform.grpc_port, "token": token}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await platform.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
