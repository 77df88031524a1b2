"""The local SMTP sink writes what it receives as .eml files, in-process or as a process."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from mailwright_smtp.sink import SinkProcess, SinkThread, SmtpSink

MESSAGE = (
    b"From: news@shop.example\r\nTo: ada@example.org\r\nSubject: Hello\r\n"
    b"Message-ID: <m1@shop.example>\r\n\r\nHi Ada.\r\n"
)


def send(
    port: int, message: bytes = MESSAGE, recipients: tuple[str, ...] = ("ada@example.org",)
) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("bounces@shop.example", list(recipients), message)


async def test_each_message_becomes_one_eml_file(tmp_path: Path) -> None:
    async with SmtpSink(tmp_path / "inbox") as sink:
        for _ in range(3):
            await asyncio.to_thread(send, sink.port)
        files = await sink.wait_for(3)

    assert len(files) == 3
    assert all(path.suffix == ".eml" for path in files)
    assert not list((tmp_path / "inbox").glob(".*.tmp"))


async def test_a_file_holds_the_message_as_received_after_trace_headers(tmp_path: Path) -> None:
    async with SmtpSink(tmp_path) as sink:
        await asyncio.to_thread(send, sink.port, MESSAGE, ("ada@example.org", "bob@example.org"))
        [path] = await sink.wait_for(1)

    content = path.read_bytes()
    assert content.endswith(MESSAGE)
    parsed = email.message_from_bytes(content)
    assert parsed["Return-Path"] == "<bounces@shop.example>"
    assert parsed.get_all("Delivered-To") == ["ada@example.org", "bob@example.org"]


async def test_waiting_for_more_than_arrives_times_out(tmp_path: Path) -> None:
    async with SmtpSink(tmp_path) as sink:
        with pytest.raises(TimeoutError):
            await sink.wait_for(1, within=0.2)


async def test_a_message_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    async with SmtpSink(tmp_path, max_message_bytes=1024) as sink:
        with pytest.raises(smtplib.SMTPException):
            await asyncio.to_thread(send, sink.port, MESSAGE + b"x" * 4096)

    assert sink.received == 0
    assert sink.messages() == []


def test_the_sink_runs_on_a_thread_for_synchronous_callers(tmp_path: Path) -> None:
    with SinkThread(tmp_path) as sink:
        send(sink.port)
        files = sink.wait_for(1)

    assert len(files) == 1


def test_the_sink_runs_as_a_process_and_stops_on_sigterm(tmp_path: Path) -> None:
    with SinkProcess(tmp_path) as sink:
        send(sink.port)
        os.kill(sink.process.pid, signal.SIGTERM)
        assert sink.process.wait(timeout=10) == 0
        said = sink.stdout.read()

    assert len(list(tmp_path.glob("*.eml"))) == 1
    assert "stopped after 1 messages" in said


def test_with_announce_the_process_prints_each_message_as_it_is_stored(tmp_path: Path) -> None:
    with SinkProcess(tmp_path, announce=True) as sink:
        send(sink.port)
        send(sink.port)
        lines = [sink.stdout.readline().split() for _ in range(2)]

    names = sorted(path.name for path in tmp_path.glob("*.eml"))
    assert [name for _, _, name in lines] == names
    assert [int(arrived) for _, arrived, _ in lines] == [int(n.split("-")[0]) for n in names]
    assert all(word == "arrived" for word, _, _ in lines)


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with SinkThread(tmp_path) as running:
        port = running.port
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mailwright_smtp.sink",
                "--dir",
                str(tmp_path),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
