"""Importing HubSpot contacts: a full list once, then searches for what changed.

- **First run** (no cursor): `GET /crm/v3/objects/contacts` with `limit`, the properties
  wanted and the `after` cursor of `paging.next.after`, to the end (the list endpoint
  has no result limit). The next run starts from the earlier of when this listing began
  (less five minutes for clock skew) and the newest `lastmodifieddate` it saw, so an edit
  made while the listing ran is not missed.
- **Later runs**: `POST /crm/v3/objects/contacts/search` for `lastmodifieddate GTE
  <since>`, sorted ascending. Pages are taken by key, not by offset: each next page asks
  from the newest `lastmodifieddate` of the page before, so a contact edited during the
  pull (which moves to the end of the order) cannot shift another out of a page, and the
  search's 10,000-result limit is never reached. Contacts of that boundary millisecond
  come again with the same message ids and are deduplicated. Only when a whole page
  shares one millisecond does the pull page by offset (`after`) inside it, up to the
  10,000 results a search can return. The next run starts `search_overlap` before the
  newest contact seen, since the search index trails edits by a few seconds.

The cursor (JSON) is `{"list": {"after", "started", "high"}}` during the first run and
`{"since", "after"?}` afterwards; each batch carries where to resume after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors import ErrorKind, ProviderError, SourceBatch
from mailwright_hubspot.client import HubSpotHttp
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.events import ContactError, contact_identify, millis

log = logging.getLogger(__name__)

CONTACTS = "/crm/v3/objects/contacts"
SEARCH = "/crm/v3/objects/contacts/search"
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Position:
    """Where a pull is. `started` (ms) is set while the first, full listing runs."""

    started: int | None = None
    after: str | None = None
    since: int | None = None
    high: int | None = None
    """The newest `lastmodifieddate` (ms) seen so far by a listing."""

    @property
    def listing(self) -> bool:
        return self.started is not None

    @classmethod
    def parse(cls, cursor: str | None, now: datetime) -> Position:
        if cursor is None:
            return cls(started=millis(now - CLOCK_SKEW))
        try:
            raw = json.loads(cursor)
            listing = raw.get("list")
            if isinstance(listing, Mapping):
                high = listing.get("high")
                return cls(
                    started=int(listing["started"]),
                    after=_text(listing.get("after")),
                    high=int(high) if high is not None else None,
                )
            return cls(since=int(raw["since"]), after=_text(raw.get("after")))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ValueError("cursor: not a HubSpot cursor written by this connector") from None

    def dump(self) -> str:
        if self.started is not None:
            listing = {"started": self.started, "after": self.after, "high": self.high}
            kept = {k: v for k, v in listing.items() if v is not None}
            return json.dumps({"list": kept}, sort_keys=True)
        values = {"since": self.since, "after": self.after}
        return json.dumps({k: v for k, v in values.items() if v is not None}, sort_keys=True)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise TypeError("not a cursor")
    return str(value)


def modified_since(since: int) -> dict[str, Any]:
    """A search filter group: contacts modified at or after `since` (epoch ms)."""
    condition = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since)}
    return {"filters": [condition]}


def _next_after(body: Mapping[str, Any]) -> str | None:
    paging = body.get("paging")
    following = paging.get("next") if isinstance(paging, Mapping) else None
    after = following.get("after") if isinstance(following, Mapping) else None
    return str(after) if isinstance(after, str | int) and str(after) else None


class HubSpotSource:
    """The source capability: the `contacts` stream, as identify events."""

    streams: Sequence[str] = ("contacts",)

    def __init__(self, config: HubSpotConfig) -> None:
        self.config = config
        self.client = HubSpotHttp(config, "source")

    async def pull(self, stream: str, cursor: str | None = None) -> AsyncIterator[SourceBatch]:
        if stream not in self.streams:
            raise ValueError(f"unknown stream {stream!r}; known: {', '.join(self.streams)}")
        position = Position.parse(cursor, datetime.now(UTC))
        if position.listing:
            total = await self._total(None) if position.after is None else None
            async for batch in self._listing(position, total):
                yield batch
            return
        async for batch in self._searching(position):
            yield batch

    async def _listing(self, position: Position, total: int | None) -> AsyncIterator[SourceBatch]:
        assert position.started is not None
        while True:
            params: dict[str, Any] = {
                "limit": self.config.page_size,
                "properties": ",".join(self.config.read_properties),
                "archived": "false",
            }
            if position.after:
                params["after"] = position.after
            body = await self.client.http.get_json(CONTACTS, params=params)
            events, newest, skipped = self._events(body)
            high = max(filter(None, (position.high, newest)), default=None)
            after = _next_after(body)
            if after is None:
                since = min(position.started, high) if high is not None else position.started
                final = Position(since=self._overlapped(since))
                yield SourceBatch("contacts", events, final.dump(), total, skipped)
                return
            position = Position(started=position.started, after=after, high=high)
            yield SourceBatch("contacts", events, position.dump(), total, skipped)

    async def _searching(self, position: Position) -> AsyncIterator[SourceBatch]:
        assert position.since is not None
        limit = self.config.search_page_size
        since, after = position.since, position.after
        while True:
            body = await self._search(since, after, limit)
            events, newest, skipped = self._events(body)
            total = body.get("total") if isinstance(body.get("total"), int) else None
            following = _next_after(body)
            if following is None:
                final = Position(since=self._overlapped(max(newest or 0, since)))
                yield SourceBatch("contacts", events, final.dump(), total, skipped)
                return
            if newest is not None and newest > since:
                since, after = newest, None  # the next page starts at this page's newest
            else:
                offset = int(following) if following.isdigit() else 0
                if offset + limit > self.config.search_max_results:
                    raise ProviderError(
                        ErrorKind.INVALID,
                        f"more than {self.config.search_max_results} contacts were modified "
                        "in the same millisecond; HubSpot's search cannot page past them",
                    )
                after = following  # a page of one millisecond: page inside it by offset
            cursor = Position(since=since, after=after).dump()
            yield SourceBatch("contacts", events, cursor, total, skipped)

    def _overlapped(self, since: int) -> int:
        return since - int(self.config.search_overlap.total_seconds() * 1000)

    async def _search(self, since: int, after: str | None, limit: int) -> Mapping[str, Any]:
        request: dict[str, Any] = {
            "filterGroups": [modified_since(since)],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": self.config.read_properties,
            "limit": limit,
        }
        if after is not None:
            request["after"] = after
        body = await self.client.http.post_json(SEARCH, request, pacer=self.client.search_pacer)
        if not isinstance(body, Mapping):
            raise ProviderError(ErrorKind.TRANSIENT, "hubspot search answered without results")
        return body

    async def _total(self, since: int | None) -> int | None:
        groups = [] if since is None else [modified_since(since)]
        request = {"filterGroups": groups, "properties": ["email"], "limit": 1}
        try:
            body = await self.client.http.post_json(SEARCH, request, pacer=self.client.search_pacer)
        except ProviderError as error:
            if error.kind in (ErrorKind.AUTH, ErrorKind.RATE_LIMITED):
                raise
            return None
        total = body.get("total") if isinstance(body, Mapping) else None
        return total if isinstance(total, int) else None

    def _events(self, body: Any) -> tuple[tuple[Event, ...], int | None, tuple[str, ...]]:
        """A page's events, its newest `lastmodifieddate` (ms), and the contacts that
        could not be read, where and why (`SourceBatch.skipped`): never dropped unsaid."""
        results = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(results, list):
            raise ProviderError(ErrorKind.TRANSIENT, "hubspot answered without results")
        events: list[Event] = []
        skipped: list[str] = []
        newest: int | None = None
        for contact in results:
            if not isinstance(contact, Mapping):
                skipped.append("contact: not an object")
                continue
            try:
                event = contact_identify(contact, self.config.properties)
            except ContactError as error:
                log.warning("hubspot contact %s skipped: %s", contact.get("id"), error)
                skipped.append(f"contact {contact.get('id')}: {error}")
                continue
            events.append(event)
            modified = event.timestamp.ToMilliseconds()
            newest = modified if newest is None else max(newest, modified)
        return tuple(events), newest, tuple(skipped)

    async def aclose(self) -> None:
        await self.client.aclose()
