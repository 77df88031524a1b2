"""A distributed run on one machine: each service in its own process, as pods would be.

`LocalCluster` starts `mailwright serve <service>` once per service, each on its own gRPC
port, sharing PostgreSQL (one database, tables prefixed by service) and Redis (bus and
key-value store), reaching each other over the network through
`MAILWRIGHT_ADDRESSES__<SERVICE>`, with the HTTP edge served by ingest. It waits until
every service reports SERVING on `grpc.health.v1`. `make run-distributed` and the
end-to-end tests use it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mailwright.runtime.clients import SERVICE_FULL_NAMES
from mailwright.runtime.settings import SERVICE_NAMES


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LocalCluster:
    """The five services as separate processes on PostgreSQL and Redis."""

    database_url: str
    redis_url: str
    data_dir: Path
    namespace: str = "mailwright"
    auth_secret: str = ""
    services: Sequence[str] = SERVICE_NAMES
    extra_env: Mapping[str, str] = field(default_factory=dict)
    grpc_ports: dict[str, int] = field(default_factory=dict)
    http_port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The variables every service process gets (its own port is added per process)."""
        if not self.grpc_ports:
            self.grpc_ports = {name: free_port() for name in self.services}
            self.http_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILWRIGHT_")}
        env.update(
            {
                "MAILWRIGHT_DATABASE_URL": self.database_url,
                "MAILWRIGHT_BUS_URL": self.redis_url,
                "MAILWRIGHT_KV_URL": self.redis_url,
                "MAILWRIGHT_NAMESPACE": self.namespace,
                "MAILWRIGHT_DATA_DIR": str(self.data_dir),
                "MAILWRIGHT_GRPC_HOST": "127.0.0.1",
                "MAILWRIGHT_HTTP_HOST": "127.0.0.1",
                "MAILWRIGHT_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.http_port}",
                "MAILWRIGHT_SHUTDOWN_GRACE": "5s",
            }
        )
        if self.auth_secret:
            env["MAILWRIGHT_AUTH_SECRET"] = self.auth_secret
        for name, port in self.grpc_ports.items():
            env[f"MAILWRIGHT_ADDRESSES__{name.upper()}"] = f"127.0.0.1:{port}"
        env.update(self.extra_env)
        return env

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.grpc_ports[service]}"

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        base = self.environment()
        # Migrate once, before the services start (as the migration Job does in Kubernetes).
        subprocess.run(
            [sys.executable, "-m", "mailwright.cli", "migrate"],
            env=base,
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        for name in self.services:
            env = dict(base)
            env["MAILWRIGHT_GRPC_PORT"] = str(self.grpc_ports[name])
            env["MAILWRIGHT_HTTP_PORT"] = str(self.http_port if name == "ingest" else free_port())
            log = (self.data_dir / f"{name}.log").open("wb")
            self.processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter
                [sys.executable, "-m", "mailwright.cli", "serve", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            asyncio.run(self.wait_serving(timeout))
        except BaseException:
            self.stop()
            raise

    async def wait_serving(self, within: float) -> None:
        deadline = time.monotonic() + within
        for name in self.services:
            async with grpc.aio.insecure_channel(self.address(name)) as channel:
                # The health stubs' type hints cover only the synchronous API.
                stub: Any = health_pb2_grpc.HealthStub(channel)
                request = health_pb2.HealthCheckRequest(service=SERVICE_FULL_NAMES[name])
                while True:
                    process = self.processes[name]
                    if process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {process.returncode}; see "
                            f"{self.data_dir / (name + '.log')}"
                        )
                    try:
                        reply = await stub.Check(request, timeout=1)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.aio.AioRpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} did not report SERVING within {within}s")
                    await asyncio.sleep(0.1)

    def kill(self, service: str) -> None:
        """Kill one service abruptly (SIGKILL), as a crashed pod."""
        process = self.processes[service]
        process.kill()
        process.wait(timeout=10)

    def restart(self, service: str, timeout: float = 60.0) -> None:
        env = self.environment()
        env["MAILWRIGHT_GRPC_PORT"] = str(self.grpc_ports[service])
        env["MAILWRIGHT_HTTP_PORT"] = str(self.http_port if service == "ingest" else free_port())
        log = (self.data_dir / f"{service}.log").open("ab")
        self.processes[service] = subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, "-m", "mailwright.cli", "serve", service],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        asyncio.run(self.wait_serving(timeout))

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every process (graceful shutdown), then SIGKILL what is left."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
