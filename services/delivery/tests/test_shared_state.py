"""State shared by replicas: the provider's token bucket and the frequency windows live in
the key-value store (memory and Redis), and a campaign goes out over Redis Streams."""

from __future__ import annotations

from pathlib import Path

import pytest
from delivery_fakes import World
from delivery_harness import campaign_state, eventually, newsletter, settings, start, start_sink

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.runtime import kv as kv_module
from mailwright.runtime.kv import KeyValueStore
from mailwright.testing.bus import Target
from mailwright_delivery.providers import RateLimiter


async def test_replicas_draw_from_one_token_bucket(kv_target: Target) -> None:
    first = await kv_module.connect(kv_target.url, namespace=kv_target.namespace)
    second = await kv_module.connect(kv_target.url, namespace=kv_target.namespace)
    try:
        await RateLimiter(first).acquire("smtp", rate=0.01, burst=5, tokens=5)
        grant = await second.take("rate:esp:smtp", rate=0.01, burst=5, tokens=1)
        assert not grant.allowed
        assert grant.retry_after > 0
    finally:
        await first.close()
        await second.close()


async def test_a_workspace_rate_is_a_bucket_of_its_own(kv: KeyValueStore) -> None:
    limiter = RateLimiter(kv)
    await limiter.acquire("smtp", 1000, 1000, 3, workspace_rate=3, workspace="acme")
    assert not (await kv.take("rate:esp:smtp:acme", rate=3, burst=3, tokens=1)).allowed
    assert (await kv.take("rate:esp:smtp:other", rate=3, burst=3, tokens=1)).allowed


@pytest.mark.redis
async def test_a_campaign_goes_out_over_redis(
    tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    world = World()
    for n in range(6):
        world.person(f"p{n}", f"person{n}@example.com")
    world.segment("everyone", [f"p{n}" for n in range(6)])
    world.template("news")
    sink, _ = await start_sink(tmp_path / "outbox")
    config = settings(tmp_path, sink.port).model_copy(
        update={"bus_url": redis_url, "namespace": redis_namespace}
    )
    running = await start(world, config)
    clients = running.clients()
    try:
        created = await clients.delivery.CreateCampaign(
            pb.CreateCampaignRequest(
                parent="workspaces/acme", campaign_id="redis", campaign=newsletter()
            )
        )
        await clients.delivery.ScheduleCampaign(
            pb.ScheduleCampaignRequest(name=created.campaign.name)
        )

        async def sent() -> bool:
            return await campaign_state(clients, created.campaign.name) == pb.CAMPAIGN_STATE_SENT

        await eventually(sent, within=20)
        assert sink.received == 6
    finally:
        await clients.close()
        await running.stop()
        await sink.stop()
