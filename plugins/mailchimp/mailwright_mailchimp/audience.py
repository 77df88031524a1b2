"""Segments as Mailchimp tags on one audience, traits as merge fields.

Each segment is a tag (`<tag_prefix><segment name>`) on the configured audience. For a
change:

1. each added member is upserted — `PUT /lists/{list_id}/members/{subscriber_hash}`, the
   hash being the MD5 of the lowercased address — with `status_if_new` (people already
   in the audience keep their status: an unsubscribed person stays unsubscribed) and
   `merge_fields` mapped from traits by the configured table;
2. the tag is set `active` on them and `inactive` on removed members —
   `POST /lists/{list_id}/members/{hash}/tags` with `{"tags": [{"name", "status"}]}`.
   Removing someone Mailchimp does not know (404) is harmless.

Both are idempotent, so a change synced twice leaves the audience as once. A change of
more than `batch_threshold` members goes through batch operations instead (`POST
/batches`, see `batches`): first the upserts, then the tags of those that succeeded —
Mailchimp does not promise to run a batch's operations in order, and a tag needs its
member. Smaller changes send their requests concurrently, at most `max_connections`
(10) at a time. A member Mailchimp refuses (an address it deems invalid, one in
compliance state) is a `MemberFailure`; the others go through.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from mailwright.connectors import (
    AudienceChange,
    AudienceMember,
    ErrorKind,
    MemberFailure,
    ProviderError,
    SyncResult,
    redact,
)
from mailwright_mailchimp.batches import BatchRunner, Operation, OperationResult, problem_text
from mailwright_mailchimp.client import REFUSED_TITLES, MailchimpHttp
from mailwright_mailchimp.config import MailchimpConfig

log = logging.getLogger(__name__)

MAX_TAG_LENGTH = 100
MAX_CHANGE = 500
T = TypeVar("T")


def subscriber_hash(email: str) -> str:
    """Mailchimp's id of a member: the MD5 hex digest of the lowercased address."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def merge_value(value: Any) -> Any:
    """A trait as a merge field value: text, numbers and address objects as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | str | Mapping):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def refusal_kind(status: int, response: Mapping[str, Any]) -> ErrorKind:
    """What a refused member operation means (400 invalid, compliance state rejected)."""
    if response.get("title") in REFUSED_TITLES:
        return ErrorKind.REJECTED
    return ErrorKind.INVALID if 400 <= status < 500 else ErrorKind.TRANSIENT


async def bounded(calls: Sequence[Callable[[], Coroutine[Any, Any, T]]]) -> list[T]:
    """Run `calls` together (the client's semaphore bounds them); the first whole-request
    failure cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks: list[asyncio.Task[T]] = [group.create_task(call()) for call in calls]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


class MailchimpAudienceSync:
    """The audience sync capability: segments as tags on one Mailchimp audience."""

    max_batch_size = MAX_CHANGE

    def __init__(self, config: MailchimpConfig) -> None:
        self.config = config
        self.list_id = config.list("audience sync")
        self.client = MailchimpHttp(config, "audience sync")
        self.batches = BatchRunner(self.client, config)

    def tag(self, change: AudienceChange) -> str:
        return (self.config.tag_prefix + change.segment_name)[:MAX_TAG_LENGTH]

    def member_path(self, email: str) -> str:
        return f"/lists/{self.list_id}/members/{subscriber_hash(email)}"

    def member_body(self, member: AudienceMember, email: str) -> dict[str, Any]:
        merges = {
            tag: merge_value(member.traits[trait])
            for trait, tag in self.config.merge_fields.items()
            if trait in member.traits
        }
        body: dict[str, Any] = {
            "email_address": email,
            "status_if_new": self.config.status_if_new,
        }
        if merges:
            body["merge_fields"] = merges
        return body

    async def sync(self, change: AudienceChange) -> SyncResult:
        failures: list[MemberFailure] = []
        added: list[tuple[AudienceMember, str]] = []
        for member in change.added:
            if member.email and member.email.strip():
                added.append((member, member.email.strip().lower()))
            else:
                failures.append(MemberFailure(member.profile_id, ErrorKind.INVALID, "no email"))
        # Without an address nobody can be in the audience: nothing to remove.
        removed = [m.email.strip().lower() for m in change.removed if m.email and m.email.strip()]
        tag = self.tag(change)
        if len(added) + len(removed) > self.config.batch_threshold:
            synced = await self._in_batches(tag, added, removed, failures)
        else:
            synced = await self._directly(tag, added, removed, failures)
        log.info(
            "mailchimp list %s tag of segment %s: %d added, %d removed, %d failed (change %s)",
            self.list_id,
            change.segment_id,
            synced,
            len(change.removed),
            len(failures),
            change.change_id,
        )
        return SyncResult(added=synced, removed=len(change.removed), failures=tuple(failures))

    # -- one request per member --------------------------------------------------------

    async def _directly(
        self,
        tag: str,
        added: Sequence[tuple[AudienceMember, str]],
        removed: Sequence[str],
        failures: list[MemberFailure],
    ) -> int:
        def upsert(member: AudienceMember, email: str) -> Callable[[], Coroutine[Any, Any, bool]]:
            async def call() -> bool:
                try:
                    await self.client.request(
                        "PUT", self.member_path(email), json=self.member_body(member, email)
                    )
                    await self._tags(email, tag, "active")
                except ProviderError as error:
                    if error.kind not in (ErrorKind.INVALID, ErrorKind.REJECTED):
                        raise
                    failures.append(MemberFailure(member.profile_id, error.kind, error.detail))
                    return False
                return True

            return call

        def untag(email: str) -> Callable[[], Coroutine[Any, Any, bool]]:
            async def call() -> bool:
                try:
                    await self._tags(email, tag, "inactive")
                except ProviderError as error:
                    if error.code != "404":
                        raise
                return True

            return call

        calls = [upsert(m, e) for m, e in added] + [untag(e) for e in removed]
        outcomes = await bounded(calls)
        return sum(outcomes[: len(added)])

    async def _tags(self, email: str, tag: str, status: str) -> None:
        await self.client.request(
            "POST",
            self.member_path(email) + "/tags",
            json={"tags": [{"name": tag, "status": status}]},
        )

    # -- batch operations ----------------------------------------------------------------

    async def _in_batches(
        self,
        tag: str,
        added: Sequence[tuple[AudienceMember, str]],
        removed: Sequence[str],
        failures: list[MemberFailure],
    ) -> int:
        upserts = [
            Operation("PUT", self.member_path(email), f"put:{n}", self.member_body(member, email))
            for n, (member, email) in enumerate(added)
        ]
        done = await self.batches.run(upserts)
        tagged: list[int] = []
        for n, (member, _) in enumerate(added):
            result = done[f"put:{n}"]
            if result.ok:
                tagged.append(n)
            else:
                failures.append(_failure(member, result))
        tags = [
            Operation(
                "POST",
                self.member_path(added[n][1]) + "/tags",
                f"tag:{n}",
                {"tags": [{"name": tag, "status": "active"}]},
            )
            for n in tagged
        ] + [
            Operation(
                "POST",
                self.member_path(email) + "/tags",
                f"untag:{n}",
                {"tags": [{"name": tag, "status": "inactive"}]},
            )
            for n, email in enumerate(removed)
        ]
        results = await self.batches.run(tags) if tags else {}
        synced = 0
        for n in tagged:
            result = results[f"tag:{n}"]
            if result.ok:
                synced += 1
            else:
                failures.append(_failure(added[n][0], result))
        for n in range(len(removed)):
            result = results[f"untag:{n}"]
            if not result.ok and result.status_code != 404:
                _raise_whole(result)
        return synced

    async def aclose(self) -> None:
        await self.client.aclose()


def _failure(member: AudienceMember, result: OperationResult) -> MemberFailure:
    if result.status_code in (401, 403, 429) or result.status_code >= 500:
        _raise_whole(result)
    kind = refusal_kind(result.status_code, result.response)
    return MemberFailure(member.profile_id, kind, redact(problem_text(result.response)))


def _raise_whole(result: OperationResult) -> None:
    status = result.status_code
    if status in (401, 403):
        kind = ErrorKind.AUTH
    elif status == 429:
        kind = ErrorKind.RATE_LIMITED
    elif status >= 500:
        kind = ErrorKind.TRANSIENT
    else:
        kind = ErrorKind.INVALID
    raise ProviderError(
        kind, f"mailchimp batch operation failed: {problem_text(result.response)}", code=str(status)
    )
