"""Reading events from a JSON Lines file for `mailwright ingest`: one Segment-format call
per line, parsed and grouped into batches that `IngestBatch` accepts, each event
remembering its line so that a rejection can name it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mailwright.common.v1 import event_pb2
from mailwright_ingest.edge.segment import Envelope, json_field, parse_call
from mailwright_ingest.values import Limits

MAX_LINE_BYTES = 32 * 1024


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str


@dataclass
class Batch:
    """Events ready to send, with the line each came from, and lines refused on reading."""

    events: list[event_pb2.Event] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    size: int = 0
    read_bytes: int = 0


def parse_line(number: int, raw: bytes, limits: Limits) -> event_pb2.Event | Rejection:
    """The event of one line, or why the line is refused."""
    if len(raw) > MAX_LINE_BYTES:
        return Rejection(number, f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        return Rejection(number, f"malformed JSON: {error}")
    except RecursionError:
        return Rejection(number, "malformed JSON: nested too deeply")
    event, problems = parse_call(data, None, "", Envelope(), limits)
    if event is None:
        return Rejection(number, describe(problems))
    return event


def describe(problems: Iterable[object]) -> str:
    parts = []
    for problem in problems:
        where = json_field(getattr(problem, "field", "")).removeprefix("event.")
        parts.append(f"{where}: {getattr(problem, 'description', problem)}")
    return "; ".join(parts)


def batches(
    lines: Iterable[bytes], limits: Limits, max_events: int = 500, max_bytes: int = 3 * 1024 * 1024
) -> Iterator[Batch]:
    """Batches of at most `max_events` events and about `max_bytes` once encoded."""
    batch = Batch()
    for number, raw in enumerate(lines, start=1):
        batch.read_bytes += len(raw)
        if not raw.strip():
            continue
        parsed = parse_line(number, raw, limits)
        if isinstance(parsed, Rejection):
            batch.rejections.append(parsed)
            continue
        size = parsed.ByteSize()
        if batch.events and (len(batch.events) >= max_events or batch.size + size > max_bytes):
            yield batch
            batch = Batch()
        batch.events.append(parsed)
        batch.lines.append(number)
        batch.size += size
    if batch.events or batch.rejections or batch.read_bytes:
        yield batch
