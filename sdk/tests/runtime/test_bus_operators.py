"""What operators see: statistics, and the `mailwright bus` command on dead letters."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from mailwright.cli import cli
from mailwright.runtime.bus import Bus, ConsumerOptions, Message, Outgoing, connect
from mailwright.testing.bus import FAST_CONSUMER_OPTIONS, eventually


async def test_stats_show_depth_pending_lease_holders_and_live_consumers(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    never = asyncio.Event()
    in_hand: list[str] = []

    async def stuck(message: Message) -> None:
        in_hand.append(message.id)
        await never.wait()

    await bus.publish_many([Outgoing("events.track", f"k{i}", b"x") for i in range(12)])
    subscription = bus.subscribe(
        "events.track", "profile", stuck, consumer="profile-1", options=fast_consumer_options
    )
    await subscription.start()
    try:
        await eventually(lambda: len(in_hand) >= 1)
        stats = await bus.stats()
    finally:
        await subscription.abort()

    assert stats.backend == bus.backend
    assert stats.partitions == 4
    assert [p.partition for p in stats.topics] == [0, 1, 2, 3]
    assert sum(p.length for p in stats.topics) == 12
    groups = [g for p in stats.topics for g in p.groups]
    assert {g.group for g in groups} == {"profile"}
    assert sum(g.pending for g in groups) == 12
    assert sum(g.lag or 0 for g in groups) == 0
    assert {g.lease_holder for g in groups} == {"profile-1"}
    assert [(c.group, c.name) for c in stats.consumers] == [("profile", "profile-1")]
    assert stats.dead_letters == {"events.track": 0}


async def _make_dead_letters(url: str, namespace: str, count: int) -> list[str]:
    async def failing(message: Message) -> None:
        raise RuntimeError("template missing")

    bus = await connect(url, namespace=namespace, partitions=4)
    async with bus:
        await bus.publish_many([Outgoing("events.email", f"k{i}", b"x") for i in range(count)])
        async with bus.subscribe(
            "events.email", "delivery", failing, max_deliveries=1, options=FAST_CONSUMER_OPTIONS
        ):
            await eventually(lambda: _dead_count_is(bus, count))
        return [letter.id for letter in await bus.dead_letters("events.email")]


async def _dead_count_is(bus: Bus, expected: int) -> bool:
    return len(await bus.dead_letters("events.email")) == expected


@pytest.fixture
def environment(redis_url: str, redis_namespace: str) -> dict[str, str]:
    return {
        "MAILWRIGHT_BUS_URL": redis_url,
        "MAILWRIGHT_NAMESPACE": redis_namespace,
        "MAILWRIGHT_BUS_PARTITIONS": "4",
        "MAILWRIGHT_CONFIG": "",
        "COLUMNS": "200",
    }


def test_the_command_explains_that_a_memory_bus_cannot_be_inspected() -> None:
    result = CliRunner().invoke(cli, ["bus", "stats"], env={"MAILWRIGHT_BUS_URL": "memory://"})

    assert result.exit_code == 1
    assert "cannot be inspected from another process" in result.output


def test_stats_command_shows_topics_groups_and_dead_letters(
    redis_url: str, redis_namespace: str, environment: dict[str, str]
) -> None:
    asyncio.run(_make_dead_letters(redis_url, redis_namespace, 2))

    result = CliRunner().invoke(cli, ["bus", "stats"], env=environment)

    assert result.exit_code == 0, result.output
    assert "events.email" in result.output
    assert "delivery" in result.output
    assert "│ events.email │ 2 " in result.output


def test_dead_letters_are_listed_replayed_by_id_and_purged(
    redis_url: str, redis_namespace: str, environment: dict[str, str]
) -> None:
    ids = asyncio.run(_make_dead_letters(redis_url, redis_namespace, 3))
    runner = CliRunner()

    listed = runner.invoke(cli, ["bus", "dead-letters", "list", "events.email"], env=environment)
    assert listed.exit_code == 0, listed.output
    assert all(i in listed.output for i in ids)
    assert "RuntimeError: template missing" in listed.output

    replayed = runner.invoke(
        cli, ["bus", "dead-letters", "replay", "events.email", "--id", ids[0]], env=environment
    )
    assert replayed.exit_code == 0, replayed.output
    assert "Replayed 1 dead letter of events.email" in replayed.output

    purged = runner.invoke(
        cli, ["bus", "dead-letters", "purge", "events.email", "--yes"], env=environment
    )
    assert purged.exit_code == 0, purged.output
    assert "Purged 2 dead letters of events.email" in purged.output
    empty = runner.invoke(cli, ["bus", "dead-letters", "list"], env=environment)
    assert "No dead letters" in empty.output


def test_replay_needs_either_ids_or_all(environment: dict[str, str]) -> None:
    result = CliRunner().invoke(
        cli, ["bus", "dead-letters", "replay", "events.email"], env=environment
    )

    assert result.exit_code == 2
    assert "--id" in result.output


def test_purge_asks_before_deleting(
    redis_url: str, redis_namespace: str, environment: dict[str, str]
) -> None:
    asyncio.run(_make_dead_letters(redis_url, redis_namespace, 1))

    result = CliRunner().invoke(
        cli, ["bus", "dead-letters", "purge", "events.email"], env=environment, input="n\n"
    )

    assert result.exit_code == 1
    check = CliRunner().invoke(cli, ["bus", "dead-letters", "list"], env=environment)
    assert "events.email" in check.output


def test_replay_all_replays_every_dead_letter(
    redis_url: str, redis_namespace: str, environment: dict[str, str]
) -> None:
    asyncio.run(_make_dead_letters(redis_url, redis_namespace, 3))

    result = CliRunner().invoke(
        cli, ["bus", "dead-letters", "replay", "events.email", "--all"], env=environment
    )

    assert result.exit_code == 0, result.output
    assert "Replayed 3 dead letters" in result.output
