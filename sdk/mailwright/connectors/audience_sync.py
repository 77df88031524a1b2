"""The audience sync capability: segment membership and traits pushed to a provider.

The segment service publishes membership transitions; the host groups them per segment
into `AudienceChange`s (at most the connector's `max_batch_size` members each) and hands
them to the connector, which makes the provider's list, tag or property match. Syncing a
change twice leaves the provider as syncing it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from mailwright.connectors.errors import ErrorKind


@dataclass(frozen=True, repr=False)
class AudienceMember:
    """A person as an audience sees them.

    `email` is the normalised address (most providers key members by it);
    `external_ids` maps a provider to its id of this person (`{"hubspot": "5101"}`) when
    the profile knows it; `traits` are JSON-compatible values to write as merge fields or
    properties.
    """

    profile_id: str
    email: str | None = None
    external_ids: Mapping[str, str] = field(default_factory=dict)
    traits: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.profile_id:
            raise ValueError("profile_id must not be empty")
        object.__setattr__(self, "external_ids", MappingProxyType(dict(self.external_ids)))
        object.__setattr__(self, "traits", MappingProxyType(dict(self.traits)))

    def __repr__(self) -> str:
        # The address and traits are personal data; logs get the profile id only.
        return f"AudienceMember(profile_id={self.profile_id!r}, traits={sorted(self.traits)!r})"


@dataclass(frozen=True)
class AudienceChange:
    """Members to add to (or update in) and remove from one segment's audience.

    `added` is an upsert: a member already there gets its traits updated. `segment_id` is
    the stable id, `segment_name` what people see (Mailchimp tag, Salesforce campaign).
    `change_id` identifies this change for the provider's idempotency keys and logs.
    """

    workspace: str
    segment_id: str
    segment_name: str
    change_id: str
    added: tuple[AudienceMember, ...] = ()
    removed: tuple[AudienceMember, ...] = ()

    def __post_init__(self) -> None:
        for name in ("workspace", "segment_id", "change_id"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        object.__setattr__(self, "added", tuple(self.added))
        object.__setattr__(self, "removed", tuple(self.removed))
        both = {m.profile_id for m in self.added} & {m.profile_id for m in self.removed}
        if both:
            raise ValueError(f"profile {sorted(both)[0]!r} is both added and removed")


@dataclass(frozen=True)
class MemberFailure:
    """One member the provider would not take, and why (redacted of addresses)."""

    profile_id: str
    kind: ErrorKind
    detail: str


@dataclass(frozen=True)
class SyncResult:
    """What a sync did: members added or updated, members removed, members that failed.

    A whole-request failure (auth, rate limit that outlasted retries) raises
    `ProviderError` instead; `failures` is for members refused one by one.
    """

    added: int
    removed: int
    failures: tuple[MemberFailure, ...] = ()


@runtime_checkable
class AudienceSync(Protocol):
    """Keeps a provider's audiences in step with segments, bound to its configuration."""

    @property
    def max_batch_size(self) -> int:
        """The most members the host should put in one `AudienceChange`."""
        ...

    async def sync(self, change: AudienceChange) -> SyncResult:
        """Make the provider's audience for `change.segment_id` reflect the change.

        Idempotent: applying the same change again changes nothing at the provider.
        Create the list, tag or campaign on first use. Respect the provider's rate limits
        and concurrency; raise `ProviderError` for a failure of the whole request.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...
