"""The conformance suite of the audience sync capability.

A plugin's test module subclasses `AudienceSyncConformance` and provides a fixture named
`audience_harness` returning an `AudienceHarness`: how to open the sync against the fake,
make members, and read back what the fake provider holds.

The suite checks that added members join the segment's audience with their traits,
removed members leave it, syncing the same change twice leaves the provider exactly as
syncing it once (idempotency), removing someone absent is harmless, a full batch goes
through, a member the provider cannot take is reported in `SyncResult.failures` while the
others still sync, throttling is waited out, and refused credentials raise `AUTH`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pytest

from mailwright.connectors import (
    AudienceChange,
    AudienceMember,
    AudienceSync,
    ErrorKind,
    ProviderError,
    SyncResult,
)
from mailwright.testing.fakes import RecordedWaits

SEGMENT_ID = "seg-vip"
SEGMENT_NAME = "VIP customers"
MAX_MEMBERS_TESTED = 250


class AudienceHarness(Protocol):
    """What the audience suite needs to know and do for one connector."""

    def open(self) -> AudienceSync:
        """A new audience sync configured to talk to the fake server."""
        ...

    def member(self, n: int) -> AudienceMember:
        """Person number `n`, with an address and a trait or two the provider stores."""
        ...

    def unsyncable_member(self) -> AudienceMember | None:
        """A member the provider cannot take (no email, say), or None if there is none."""
        ...

    def key(self, member: AudienceMember) -> str:
        """How `members_of` names this member (the email, the provider's id …)."""
        ...

    def members_of(self, segment_id: str, segment_name: str) -> set[str]:
        """The keys of the people in the provider's audience for that segment."""
        ...

    def traits_of(self, member: AudienceMember) -> Mapping[str, Any]:
        """The member's traits as the provider holds them, in the member's own terms."""
        ...

    def snapshot(self) -> object:
        """Everything the fake provider holds, comparable with `==`."""
        ...

    def rate_limit(self, times: int) -> float | None:
        """Throttle the next `times` requests; return the wait asked for, if any."""
        ...

    def refuse_credentials(self) -> None:
        """Answer every request as to a revoked or wrong token."""
        ...


def change(
    added: Sequence[AudienceMember] = (), removed: Sequence[AudienceMember] = ()
) -> AudienceChange:
    return AudienceChange(
        workspace="acme",
        segment_id=SEGMENT_ID,
        segment_name=SEGMENT_NAME,
        change_id=uuid.uuid4().hex,
        added=tuple(added),
        removed=tuple(removed),
    )


class AudienceSyncConformance:
    """Tests every audience sync must pass; subclass it and provide `audience_harness`."""

    async def _sync(self, harness: AudienceHarness, delta: AudienceChange) -> SyncResult:
        sync = harness.open()
        try:
            return await sync.sync(delta)
        finally:
            await sync.aclose()

    def _audience(self, harness: AudienceHarness) -> set[str]:
        return harness.members_of(SEGMENT_ID, SEGMENT_NAME)

    @pytest.mark.asyncio
    async def test_declares_a_batch_size(self, audience_harness: AudienceHarness) -> None:
        sync = audience_harness.open()
        try:
            assert sync.max_batch_size >= 1
        finally:
            await sync.aclose()

    @pytest.mark.asyncio
    async def test_added_members_join_the_audience_with_their_traits(
        self, audience_harness: AudienceHarness, recorded_waits: RecordedWaits
    ) -> None:
        members = [audience_harness.member(n) for n in range(3)]
        result = await self._sync(audience_harness, change(added=members))
        assert result.added == 3
        assert not result.failures
        assert self._audience(audience_harness) == {audience_harness.key(m) for m in members}
        for member in members:
            assert audience_harness.traits_of(member) == dict(member.traits)

    @pytest.mark.asyncio
    async def test_syncing_a_change_twice_leaves_the_provider_as_once(
        self, audience_harness: AudienceHarness, recorded_waits: RecordedWaits
    ) -> None:
        members = [audience_harness.member(n) for n in range(4)]
        delta = change(added=members[:3], removed=members[3:])
        await self._sync(audience_harness, change(added=members[3:]))
        first = await self._sync(audience_harness, delta)
        after_once = audience_harness.snapshot()
        second = await self._sync(audience_harness, delta)
        assert audience_harness.snapshot() == after_once
        assert (second.added, second.removed) == (first.added, first.removed)

    @pytest.mark.asyncio
    async def test_removed_members_leave_the_audience(
        self, audience_harness: AudienceHarness, recorded_waits: RecordedWaits
    ) -> None:
        members = [audience_harness.member(n) for n in range(3)]
        await self._sync(audience_harness, change(added=members))
        result = await self._sync(audience_harness, change(removed=members[:2]))
        assert result.removed == 2
        assert self._audience(audience_harness) == {audience_harness.key(members[2])}

    @pytest.mark.asyncio
    async def test_removing_someone_absent_is_harmless(
        self, audience_harness: AudienceHarness, recorded_waits: RecordedWaits
    ) -> None:
        present, absent = audience_harness.member(1), audience_harness.member(2)
        await self._sync(audience_harness, change(added=[present]))
        result = await self._sync(audience_harness, change(removed=[absent]))
        assert not result.failures
        assert self._audience(audience_harness) == {audience_harness.key(present)}

    @pytest.mark.asyncio
    async def test_a_full_batch_goes_through(
        self, audience_harness: AudienceHarness, recorded_waits: RecordedWaits
    ) -> None:
        sync = audience_harness.open()
        size = min(sync.max_batch_size, MAX_MEMBERS_TESTED)
        await sync.aclose()
        members = [audience_harness.member(n) for n in range(size)]
        result = await self._sync(audience_harness, change(added=members))
        assert result.added == size
        assert len(self._audience(audience_harness)) == size

    @pytest.mark.asyncio
    async def test_a_member_the_provider_cannot_take_is_reported_not_raised(
        self, audience_harness: AudienceHarness, recorded_waits: RecordedWaits
    ) -> None:
        bad = audience_harness.unsyncable_member()
        if bad is None:
            pytest.skip("every member can be synced to this provider")
        good = [audience_harness.member(n) for n in range(2)]
        result = await self._sync(audience_harness, change(added=[good[0], bad, good[1]]))
        assert [failure.profile_id for failure in result.failures] == [bad.profile_id]
        assert result.added == 2
        assert self._audience(audience_harness) == {audience_harness.key(m) for m in good}

    @pytest.mark.asyncio
    async def test_throttling_is_waited_out(
        self, audience_harness: AudienceHarness, recorded_waits: RecordedWaits
    ) -> None:
        members = [audience_harness.member(n) for n in range(2)]
        asked = audience_harness.rate_limit(1)
        result = await self._sync(audience_harness, change(added=members))
        assert result.added == 2
        assert recorded_waits.seconds, "use mailwright.connectors.http to wait"
        if asked is not None:
            assert any(wait == pytest.approx(asked, rel=0.1) for wait in recorded_waits.seconds)

    @pytest.mark.asyncio
    async def test_refused_credentials_raise_auth(
        self, audience_harness: AudienceHarness, recorded_waits: RecordedWaits
    ) -> None:
        audience_harness.refuse_credentials()
        with pytest.raises(ProviderError) as caught:
            await self._sync(audience_harness, change(added=[audience_harness.member(1)]))
        assert caught.value.kind is ErrorKind.AUTH
