"""Importing Salesforce contacts and leads by SOQL, incrementally by SystemModstamp.

Each stream runs one query, ordered by `SystemModstamp, Id`:

    SELECT Id, SystemModstamp, CreatedDate, Email, FirstName, … FROM Contact
    WHERE SystemModstamp > 2026-03-01T12:00:00.000Z
       OR (SystemModstamp = 2026-03-01T12:00:00.000Z AND Id > '003…')
    ORDER BY SystemModstamp, Id

and follows `nextRecordsUrl` (`/services/data/vXX.X/query/01g…-2000`) to the end, pages
of `page_size` (`Sforce-Query-Options: batchSize`). The cursor (JSON) holds the last
record seen (`after`: its modstamp and id, the keyset above, so records sharing a
millisecond are neither lost nor repeated) and the query locator of the next page
(`next`). A resumed pull follows the locator; Salesforce drops idle locators after about
fifteen minutes (`INVALID_QUERY_LOCATOR`), and then the query is run again from `after`.
The last batch's cursor is the next run's starting point.

Records become identify events: `anonymous_id = salesforce:contact:<Id>` (or
`salesforce:lead:<Id>`), identities `salesforce:contact` (or `:lead`) and `email`, the
mapped fields as traits, message id `salesforce:contact:<Id>:<SystemModstamp ms>`. A
record that cannot be read is reported in its batch's `skipped` (`Contact 003…:
CreatedDate: not a datetime`) and the import goes on.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1.common_pb2 import Identity
from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, Event
from mailwright.connectors import ErrorKind, ProviderError, SourceBatch
from mailwright_salesforce.client import SalesforceHttp, soql_string
from mailwright_salesforce.config import NAME, SalesforceConfig

log = logging.getLogger(__name__)

STREAMS: Mapping[str, str] = {"contacts": "Contact", "leads": "Lead"}
ID = re.compile(r"^[A-Za-z0-9]{15,18}$")


class RecordError(ValueError):
    """A record that cannot be read; the message names the field."""


def parse_time(value: object, field: str) -> datetime:
    """Salesforce's datetimes: `2026-03-01T12:00:00.000+0000`."""
    if not isinstance(value, str):
        raise RecordError(f"{field}: missing")
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"{field}: not a datetime") from None
    if parsed.tzinfo is None:
        raise RecordError(f"{field}: no time zone")
    return parsed.astimezone(UTC)


def soql_datetime(when: datetime) -> str:
    """A SOQL datetime literal (unquoted), to the millisecond, in UTC."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def query(sobject: str, fields: Sequence[str], after: tuple[str, str] | None) -> str:
    wanted = list(dict.fromkeys(["Id", "SystemModstamp", "CreatedDate", *fields]))
    text = f"SELECT {', '.join(wanted)} FROM {sobject}"
    if after is not None:
        stamp, record_id = after
        text += (
            f" WHERE SystemModstamp > {stamp} OR (SystemModstamp = {stamp}"
            f" AND Id > {soql_string(record_id)})"
        )
    return text + " ORDER BY SystemModstamp, Id"


def record_event(sobject: str, record: Mapping[str, Any], fields: Mapping[str, str]) -> Event:
    kind = sobject.lower()
    record_id = record.get("Id")
    if not isinstance(record_id, str) or not ID.match(record_id):
        raise RecordError("Id: not a Salesforce id")
    modified = parse_time(record.get("SystemModstamp"), "SystemModstamp")
    traits: dict[str, Any] = {}
    for field, trait in fields.items():
        value = record.get(field)
        if isinstance(value, str | int | float | bool):
            traits[trait] = (
                value.strip().lower() if trait == "email" and isinstance(value, str) else value
            )
    if isinstance(record.get("CreatedDate"), str):
        traits["created_at"] = parse_time(record["CreatedDate"], "CreatedDate").isoformat()
    identities = [Identity(type=f"salesforce:{kind}", value=record_id)]
    if isinstance(traits.get("email"), str) and traits["email"]:
        identities.append(Identity(type="email", value=traits["email"]))
    stamp = Timestamp()
    stamp.FromDatetime(modified)
    struct = struct_pb2.Struct()
    struct.update(traits)
    return Event(
        type=EVENT_TYPE_IDENTIFY,
        message_id=f"salesforce:{kind}:{record_id}:{int(modified.timestamp() * 1000)}",
        anonymous_id=f"salesforce:{kind}:{record_id}",
        identities=identities,
        timestamp=stamp,
        traits=struct,
        source=NAME,
    )


def _cursor(after: tuple[str, str] | None, following: str | None) -> str:
    values: dict[str, Any] = {}
    if after is not None:
        values["after"] = list(after)
    if following is not None:
        values["next"] = following
    return json.dumps(values, sort_keys=True)


def _parse_cursor(cursor: str | None, data: str) -> tuple[tuple[str, str] | None, str | None]:
    if cursor is None:
        return None, None
    try:
        raw = json.loads(cursor)
        after = raw.get("after")
        following = raw.get("next")
        if after is not None:
            stamp, record_id = after
            parse_time(stamp.replace("Z", "+00:00"), "after")
            if not ID.match(record_id):
                raise ValueError
            after = (str(stamp), str(record_id))
        if following is not None and not (
            isinstance(following, str) and following.startswith(f"{data}/query/")
        ):
            raise ValueError
        return after, following
    except (ValueError, TypeError, AttributeError, RecordError):
        raise ValueError("cursor: not a Salesforce cursor written by this connector") from None


class SalesforceSource:
    """The source capability: the `contacts` and `leads` streams, as identify events."""

    streams: Sequence[str] = tuple(STREAMS)

    def __init__(self, config: SalesforceConfig) -> None:
        self.config = config
        self.client = SalesforceHttp(config, "source")

    async def pull(self, stream: str, cursor: str | None = None) -> AsyncIterator[SourceBatch]:
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}; known: {', '.join(self.streams)}")
        sobject = STREAMS[stream]
        fields = self.config.fields_of(sobject)
        after, following = _parse_cursor(cursor, self.client.data)
        options = {"headers": {"Sforce-Query-Options": f"batchSize={self.config.page_size}"}}
        while True:
            if following is not None:
                try:
                    body = await self.client.json("GET", following, **_copy(options))
                except ProviderError as error:
                    if error.code != "INVALID_QUERY_LOCATOR":
                        raise
                    log.info("salesforce query locator expired; querying again from the cursor")
                    following = None
                    continue
            else:
                soql = query(sobject, list(fields), after)
                body = await self.client.json(
                    "GET", f"{self.client.data}/query?q={quote(soql)}", **_copy(options)
                )
            records = body.get("records") if isinstance(body, Mapping) else None
            if not isinstance(records, list):
                raise ProviderError(
                    ErrorKind.TRANSIENT, "salesforce answered a query without records"
                )
            events = []
            skipped = []
            for n, record in enumerate(records):
                try:
                    events.append(record_event(sobject, record, fields))
                except RecordError as error:
                    # One unreadable record must neither stop the import (every later
                    # run would stop on it again) nor vanish from it unreported.
                    where = record.get("Id") if isinstance(record, Mapping) else None
                    where = where if isinstance(where, str) and ID.match(where) else f"#{n}"
                    log.warning("salesforce %s %s skipped: %s", sobject, where, error)
                    skipped.append(f"{sobject} {where}: {error}")
            after = _keyset(records, after)
            done = bool(body.get("done", True))
            following = None if done else str(body.get("nextRecordsUrl") or "") or None
            total = body.get("totalSize") if isinstance(body.get("totalSize"), int) else None
            yield SourceBatch(
                stream, tuple(events), _cursor(after, following), total, tuple(skipped)
            )
            if following is None:
                return

    async def aclose(self) -> None:
        await self.client.aclose()


def _keyset(records: Sequence[Any], after: tuple[str, str] | None) -> tuple[str, str] | None:
    """Where the keyset resumes after a page: its last record with a readable modstamp and id
    (the page is ordered by both), else where it resumed before."""
    for record in reversed(records):
        if not isinstance(record, Mapping):
            continue
        record_id = record.get("Id")
        try:
            stamp = parse_time(record.get("SystemModstamp"), "SystemModstamp")
        except RecordError:
            continue
        if isinstance(record_id, str) and ID.match(record_id):
            return soql_datetime(stamp), record_id
    return after


def _copy(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in options.items()
    }
