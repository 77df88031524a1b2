"""Importing customers, orders and events from CSV, JSONL and Parquet exports.

Each stream's files (the mapping's patterns, relative to `directory`, in name order) are
read row by row; each row becomes an event by the mapping, and a row that cannot — a
value that does not cast, no identity, a malformed line — is **skipped and reported**
(`SourceBatch.skipped`: `orders.csv line 12: column 'total': not a decimal`, never the
value), the rest importing.

The cursor (JSON) says where to resume: the file being read, its fingerprint and the
number of records of it already imported (`at`), and every file finished, with its size,
modification time and fingerprint (`done`). The fingerprint is the SHA-256 of the file's
content: a file that changed since the import stopped in it is **not** resumed at a row
offset that no longer means anything — the pull fails, saying so, until the stream is
reset. A finished file seen again unchanged is skipped; a finished file that changed is
imported again (its unchanged rows keep their message ids and are deduplicated by
ingest). Rows without a `message_id` column get one from a hash of the file name, the
row's content and how many identical rows came before it in the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors import ConfigProblem, ConnectorConfigError, SourceBatch, env_variable
from mailwright_files.config import NAME, FilesConfig
from mailwright_files.mapping import (
    SOURCE,
    FilesMapping,
    RowError,
    StreamMapping,
    row_key,
    to_event,
)
from mailwright_files.readers import format_of, read

log = logging.getLogger(__name__)

FINGERPRINT_CHUNK = 1024 * 1024


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(FINGERPRINT_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Seen:
    size: int
    mtime: int
    print: str

    @classmethod
    def of(cls, path: Path, known: str | None = None) -> Seen:
        stat = path.stat()
        return cls(stat.st_size, stat.st_mtime_ns, known or fingerprint(path))

    def same_file(self, path: Path) -> bool:
        stat = path.stat()
        if (stat.st_size, stat.st_mtime_ns) == (self.size, self.mtime):
            return True
        return stat.st_size == self.size and fingerprint(path) == self.print


@dataclass
class Position:
    """Where a stream's import is: the file in progress and the files finished."""

    done: dict[str, Seen] = field(default_factory=dict)
    file: str | None = None
    print: str | None = None
    at: int = 0

    @classmethod
    def parse(cls, cursor: str | None) -> Position:
        if cursor is None:
            return cls()
        try:
            raw = json.loads(cursor)
            done = {
                str(name): Seen(int(size), int(mtime), str(digest))
                for name, (size, mtime, digest) in raw.get("done", {}).items()
            }
            current = raw.get("file")
            if current is None:
                return cls(done)
            return cls(done, str(current["path"]), str(current["print"]), int(current["at"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ValueError("cursor: not a files cursor written by this connector") from None

    def dump(self) -> str:
        out: dict[str, Any] = {
            "done": {k: [v.size, v.mtime, v.print] for k, v in sorted(self.done.items())}
        }
        if self.file is not None:
            out["file"] = {"path": self.file, "print": self.print, "at": self.at}
        return json.dumps(out, sort_keys=True)


class FilesSource:
    """The source capability: one stream per declared mapping."""

    def __init__(self, config: FilesConfig) -> None:
        if config.directory is None:
            raise _missing("directory")
        if config.mapping is None:
            raise _missing("mapping_file")
        self.config = config
        self.directory = config.directory.resolve()
        self.mapping: FilesMapping = config.mapping

    @property
    def streams(self) -> Sequence[str]:
        return tuple(self.mapping.streams)

    def files(self, spec: StreamMapping) -> list[str]:
        """The stream's files, relative to the directory, in name order; none outside it."""
        found: set[str] = set()
        for pattern in spec.files:
            for path in self.directory.glob(pattern):
                resolved = path.resolve()
                if resolved.is_file() and resolved.is_relative_to(self.directory):
                    found.add(path.relative_to(self.directory).as_posix())
        return sorted(found)

    async def pull(self, stream: str, cursor: str | None = None) -> AsyncIterator[SourceBatch]:
        spec = self.mapping.streams.get(stream)
        if spec is None:
            raise ValueError(f"unknown stream {stream!r}; known: {', '.join(self.streams)}")
        position = Position.parse(cursor)
        names = self.files(spec)
        total = None
        if position.file is not None:
            self._check_resumable(position)
            names = [position.file, *[n for n in names if n != position.file]]
        yielded = False
        for name in names:
            path = self.directory / name
            if name != position.file:
                seen = position.done.get(name)
                if seen is not None and seen.same_file(path):
                    continue
                if seen is not None:
                    log.info(
                        "files %s: %s changed since it was imported; importing it again",
                        stream,
                        name,
                    )
                position.file, position.print, position.at = name, fingerprint(path), 0
            for batch in self._batches(stream, spec, path, position, total):
                yielded = True
                yield batch
        if not yielded or position.file is not None:
            position.file = None
            yield SourceBatch(stream, (), position.dump(), total)

    def _check_resumable(self, position: Position) -> None:
        assert position.file is not None
        path = self.directory / position.file
        if not path.is_file() or fingerprint(path) != position.print:
            raise ValueError(
                f"cursor: {position.file} changed (or went) since the import stopped at record "
                f"{position.at}; resuming at that offset would skip or repeat rows. Run "
                f"`mailwright connectors reset {NAME} --stream … --workspace …` to import the "
                "stream again (rows already imported are deduplicated)."
            )

    def _batches(
        self, stream: str, spec: StreamMapping, path: Path, position: Position, total: int | None
    ) -> Iterator[SourceBatch]:
        name = position.file or path.name
        kind = format_of(path, spec.format)
        events: list[Event] = []
        skipped: list[str] = []
        repeats: dict[str, int] = {}
        rows = read(path, kind, position.at, delimiter=spec.csv_delimiter, encoding=spec.encoding)
        if position.at and spec.message_id is None:
            repeats = self._repeats(path, kind, spec, position.at)
        for row in rows:
            where = f"{name} {'row' if kind == 'parquet' else 'line'} {row.line}"
            if row.problem is not None:
                skipped.append(f"{where}: {row.problem}")
            else:
                key = row_key(row.values)
                count = repeats.get(key, 0)
                repeats[key] = count + 1
                digest = hashlib.sha256(f"{name}\x00{count}\x00{key}".encode()).hexdigest()[:40]
                try:
                    events.append(to_event(stream, spec, row.values, f"{SOURCE}:{stream}:{digest}"))
                except RowError as error:
                    skipped.append(f"{where}: {error}")
            position.at = row.index + 1
            if len(events) + len(skipped) >= self.config.batch_size:
                yield self._batch(stream, events, skipped, position, total)
                events, skipped = [], []
        assert position.file is not None
        assert position.print is not None
        position.done[position.file] = Seen.of(path, position.print)
        position.file = None
        yield self._batch(stream, events, skipped, position, total)

    def _repeats(self, path: Path, kind: str, spec: StreamMapping, upto: int) -> dict[str, int]:
        # Resumed mid-file: count the identical rows before the offset, so ids stay stable.
        counts: dict[str, int] = {}
        for row in read(path, kind, 0, delimiter=spec.csv_delimiter, encoding=spec.encoding):
            if row.index >= upto:
                break
            if row.problem is None:
                key = row_key(row.values)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def _batch(
        self,
        stream: str,
        events: list[Event],
        skipped: list[str],
        position: Position,
        total: int | None,
    ) -> SourceBatch:
        for problem in skipped:
            log.warning("files %s: skipped %s", stream, problem)
        return SourceBatch(stream, tuple(events), position.dump(), total, tuple(skipped))

    async def aclose(self) -> None:
        return None


def _missing(field_name: str) -> ConnectorConfigError:
    variable = env_variable(NAME, field_name)
    problem = ConfigProblem(field_name, "not set", f"required by the source; set {variable}")
    return ConnectorConfigError(NAME, [problem])
