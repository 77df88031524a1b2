"""A local SMTP sink: accepts every message and writes it as an `.eml` file.

For the demo (`make run`), end-to-end tests and the delivery benchmark — never for
production. Each message lands in `DIR/<time_ns>-<pid>-<n>.eml`, exactly as received
(DKIM signatures still verify) after `Return-Path` and `Delivered-To` trace headers, as an
MTA's final delivery would add. Files are written under a temporary name and renamed, so
a reader never sees half a message.

In-process (asyncio):

    async with SmtpSink(tmp_path) as sink:   # port 0: the system picks one
        ... send to 127.0.0.1:sink.port ...
        files = await sink.wait_for(3)

From synchronous code, `SinkThread(tmp_path)` runs the same on its own thread; as a
process, `python -m mailwright_smtp.sink --dir DIR --port N` (prints the port it bound),
which `with SinkProcess(tmp_path) as sink:` starts and stops, reading `sink.port`.
With `--announce` the process also prints `arrived <time_ns> <file name>` for each message
as it is stored, before its 250 goes out: a benchmark waits on that line instead of
listing the directory over and over in the process it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class EmlWriter:
    """aiosmtpd handler writing each message to its own file in `directory`."""

    def __init__(self, directory: Path, announce: Callable[[int, str], None] | None = None) -> None:
        self.directory = directory
        self.announce = announce
        self.received = 0
        self._numbers = itertools.count(1)
        self._arrived = asyncio.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        trace = f"Return-Path: <{envelope.mail_from or ''}>\r\n".encode()
        for recipient in envelope.rcpt_tos:
            trace += f"Delivered-To: {recipient}\r\n".encode()
        number = next(self._numbers)
        arrived = time.time_ns()
        name = f"{arrived}-{os.getpid()}-{number:08d}.eml"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(trace + content)
        os.replace(temporary, self.directory / name)
        if self.announce is not None:
            self.announce(arrived, name)
        async with self._arrived:
            self.received += 1
            self._arrived.notify_all()
        return f"250 2.0.0 Ok: queued as {name[:-4]}"

    async def wait_for(self, count: int) -> None:
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.received >= count)


class SmtpSink:
    """The sink server on this event loop; `port` is the one bound (give 0 to choose)."""

    def __init__(
        self,
        directory: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        announce: Callable[[int, str], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self._requested_port = port
        self._max_message_bytes = max_message_bytes
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self.writer = EmlWriter(self.directory, announce)

    @property
    def port(self) -> int:
        """The port bound (still known after `stop`)."""
        if self._port is None:
            raise RuntimeError("the sink is not started")
        return self._port

    @property
    def received(self) -> int:
        return self.writer.received

    async def start(self) -> SmtpSink:
        self.directory.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, host=self.host, port=self._requested_port
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def messages(self) -> list[Path]:
        """The `.eml` files in the directory, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    async def wait_for(self, count: int, within: float = 10.0) -> list[Path]:
        """Wait until this sink has received `count` messages; return the directory's files.

        Raises `TimeoutError` after `within` seconds.
        """
        await asyncio.wait_for(self.writer.wait_for(count), within)
        return self.messages()

    async def __aenter__(self) -> SmtpSink:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _protocol(self) -> SMTP:
        # A fixed hostname: the default asks DNS for this machine's name, which can hang.
        return SMTP(
            self.writer,
            hostname="mailwright-sink.localhost",
            ident="Mailwright SMTP sink",
            data_size_limit=self._max_message_bytes,
            enable_SMTPUTF8=True,
        )


class SinkThread:
    """A `SmtpSink` on its own event loop and thread, for synchronous callers."""

    def __init__(self, directory: Path | str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sink = SmtpSink(directory, host=host, port=port)
        self._thread = threading.Thread(target=self._run, name="smtp-sink", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return self.sink.port

    def messages(self) -> list[Path]:
        return self.sink.messages()

    def wait_for(self, count: int, within: float = 10.0) -> list[Path]:
        if self._loop is None:
            raise RuntimeError("the sink is not started")
        future = asyncio.run_coroutine_threadsafe(self.sink.wait_for(count, within), self._loop)
        return future.result(within + 1)

    def start(self) -> SinkThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def __enter__(self) -> SinkThread:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.sink.start()
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.sink.stop()


class SinkProcess:
    """The sink in a process of its own, from port 0: `port` is read from its banner;
    with `announce`, `stdout` then yields one `arrived <time_ns> <file>` line a message.
    Terminated (SIGTERM) on leaving the block."""

    def __init__(self, directory: Path | str, *, announce: bool = False) -> None:
        self.directory = Path(directory)
        self.announce = announce
        self.port = 0

    @property
    def stdout(self) -> Any:
        assert self.process.stdout is not None
        return self.process.stdout

    def __enter__(self) -> SinkProcess:
        command = [sys.executable, "-m", "mailwright_smtp.sink"]
        command += ["--dir", str(self.directory), "--port", "0"]
        if self.announce:
            command.append("--announce")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=subprocess.PIPE, text=True
        )
        try:
            banner = self.stdout.readline()  # "smtp sink listening on HOST:PORT, writing to …"
            self.port = int(banner.split(" on ", 1)[1].split(",", 1)[0].rsplit(":", 1)[1])
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def print_arrival(arrived: int, name: str) -> None:
    print(f"arrived {arrived} {name}", flush=True)


async def serve(
    directory: Path, host: str, port: int, max_message_bytes: int, announce: bool = False
) -> None:
    """Run the sink until SIGINT or SIGTERM, announcing the bound port on stdout (and,
    with `announce`, each message as it is stored)."""
    sink = await SmtpSink(
        directory,
        host=host,
        port=port,
        max_message_bytes=max_message_bytes,
        announce=print_arrival if announce else None,
    ).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    print(f"smtp sink listening on {host}:{sink.port}, writing to {directory}", flush=True)
    await stop.wait()
    await sink.stop()
    print(f"smtp sink stopped after {sink.received} messages", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mailwright_smtp.sink",
        description="Accept every SMTP message and write it as an .eml file.",
    )
    parser.add_argument("--dir", required=True, type=Path, help="where to write the .eml files")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", default=2525, type=int, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--max-size",
        default=DEFAULT_MAX_MESSAGE_BYTES,
        type=int,
        help="largest message accepted, in bytes (default 32 MiB)",
    )
    parser.add_argument(
        "--announce",
        action="store_true",
        help="print 'arrived <time_ns> <file>' on stdout as each message is stored",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: {args.port} is not a port number")
    try:
        asyncio.run(serve(args.dir, args.host, args.port, args.max_size, args.announce))
    except OSError as error:
        print(f"smtp sink: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
