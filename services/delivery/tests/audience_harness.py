"""Delivery with the real profile and segment services on one Platform, syncing to the
Mailchimp plugin's fake server: people are made by publishing identify events, segments
by the segment API, and what reaches Mailchimp is read from the fake."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from delivery_harness import SECRET, eventually

from mailwright.common.v1 import common_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings
from mailwright.segment.v1 import segment_pb2
from mailwright.testing.fakes import FakeServer
from mailwright_mailchimp.fake import FakeMailchimp
from mailwright_profile.simulate import identify

WS = "acme"
PARENT = f"workspaces/{WS}"
PROFILE_FAST = {
    "retry_backoff": 0.05,
    "claim_idle": 0.3,
    "lease_ttl": 0.6,
    "outbox_interval": 0.1,
    "outbox_grace": 0.0,
}


def audience_settings(
    tmp_path: Path,
    mailchimp: FakeMailchimp,
    server: FakeServer,
    *,
    database_url: str = "",
    bus_url: str = "",
    namespace: str = "mailwright",
    grace: float = 2,
    **delivery: Any,
) -> Settings:
    section: dict[str, Any] = {
        "poll_interval": "50ms",
        "backoff_base": "200ms",
        "backoff_cap": "1s",
        "consumer_block": "100ms",
        "consumer_retry_backoff": "100ms",
        "audience_lease": "2s",
    }
    section.update(delivery)
    return Settings(
        data_dir=tmp_path / "data",
        grpc_port=0,
        http_port=0,
        auth_secret=SECRET,
        shutdown_grace=grace,
        database_url=database_url,
        bus_url=bus_url or f"memory://{uuid.uuid4().hex}",
        namespace=namespace,
        plugins=["mailchimp"],
        services={"delivery": section, "profile": PROFILE_FAST},
        connectors={
            "mailchimp": {
                "api_key": mailchimp.api_key,
                "list_id": mailchimp.list_id,
                "base_url": server.url + "/3.0",
                "batch_poll_interval": "100ms",
                # One attempt: a 429 reaches delivery's runner, whose retry is under test.
                "retries": 1,
            }
        },
    )  # type: ignore[call-arg]


class AudienceStack:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.clients: Clients = platform.clients()

    @classmethod
    async def start(cls, config: Settings) -> AudienceStack:
        platform = Platform(config, resolve_services(["profile", "segment", "delivery"]))
        await platform.start()
        return cls(platform)

    async def stop(self) -> None:
        await self.clients.close()
        await self.platform.stop()

    async def person(self, user_id: str, **traits: Any) -> str:
        """Identify `user_id` with `traits` and wait until the profile shows them."""
        bus = self.platform.runtime.bus  # type: ignore[union-attr]
        event = identify(user_id=user_id, traits=traits, message_id=uuid.uuid4().hex)
        await bus.publish("events.identify", event.SerializeToString(), key=f"{WS}:{user_id}")
        found: dict[str, str] = {}

        async def shows() -> bool:
            try:
                reply = await self.clients.profile.LookupProfile(
                    profile_pb2.LookupProfileRequest(
                        parent=PARENT, identity=common_pb2.Identity(type="user_id", value=user_id)
                    )
                )
            except Exception:
                return False
            now = dict(reply.profile.traits)
            found["id"] = reply.profile.profile_id
            return all(now.get(k) == v for k, v in traits.items())

        await eventually(shows, within=15)
        return found["id"]

    async def segment(self, segment_id: str, rule_text: str) -> None:
        await self.clients.segment.CreateSegment(
            segment_pb2.CreateSegmentRequest(
                parent=PARENT,
                segment_id=segment_id,
                segment=segment_pb2.Segment(rule_text=rule_text),
            )
        )

    async def destination(
        self,
        destination_id: str,
        segments: Mapping[str, str],
        traits: tuple[str, ...] = ("first_name",),
    ) -> pb.AudienceDestination:
        reply = await self.clients.delivery.CreateAudienceDestination(
            pb.CreateAudienceDestinationRequest(
                parent=PARENT,
                audience_destination_id=destination_id,
                audience_destination=pb.AudienceDestination(
                    connector="mailchimp",
                    segments=[
                        pb.AudienceSegment(segment=s, audience_name=name)
                        for s, name in segments.items()
                    ],
                    traits=list(traits),
                ),
                request_id=uuid.uuid4().hex,
            )
        )
        return reply.audience_destination

    async def status(self, name: str) -> pb.AudienceSyncStatus:
        reply = await self.clients.delivery.GetAudienceSyncStatus(
            pb.GetAudienceSyncStatusRequest(name=name)
        )
        return reply.status

    async def settled(self, name: str, within: float = 20) -> pb.AudienceSyncStatus:
        """Wait until nothing is pending or resyncing; the status then."""
        latest: dict[str, pb.AudienceSyncStatus] = {}

        async def idle() -> bool:
            status = await self.status(name)
            latest["status"] = status
            return all(
                s.pending == 0 and s.resync_state == pb.RESYNC_STATE_IDLE for s in status.segments
            )

        await eventually(idle, within=within)
        return latest["status"]
