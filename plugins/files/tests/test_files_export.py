"""`mailwright files export`: Parquet a warehouse reads, from Mailwright's gRPC listings.

ListProfiles, ListProfileEvents and ListSends are served here by a small in-process gRPC
servicer (the profile and delivery services do not list yet on this branch); the export
talks to it over a real gRPC channel, as it would to the services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import grpc
import pyarrow.dataset as ds
import pytest
import pytest_asyncio
from click.testing import CliRunner, Result
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.cli import cli
from mailwright.common.v1.common_pb2 import Identity
from mailwright.common.v1.event_pb2 import EVENT_TYPE_TRACK, Event
from mailwright.delivery.v1 import delivery_pb2, delivery_pb2_grpc
from mailwright.profile.v1 import profile_pb2, profile_pb2_grpc
from mailwright_files.export import EVENTS, PROFILES, SENDS

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def stamp(when: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(when)
    return out


class Listings(profile_pb2_grpc.ProfileServiceServicer, delivery_pb2_grpc.DeliveryServiceServicer):
    """Profiles, their events and sends, listed page by page as the contracts say."""

    def __init__(self) -> None:
        self.profiles: list[profile_pb2.Profile] = []
        self.events: dict[str, list[Event]] = {}
        self.sends: list[delivery_pb2.Send] = []
        self.tokens: list[str] = []
        self.unimplemented = False

    def _page(self, items: list[Any], size: int, token: str) -> tuple[list[Any], str]:
        start = int(token or 0)
        end = start + (size or 50)
        return items[start:end], str(end) if end < len(items) else ""

    async def ListProfiles(self, request: Any, context: Any) -> Any:
        self.tokens.append(dict(context.invocation_metadata()).get("authorization", ""))
        if self.unimplemented:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "ListProfiles is not implemented")
        field = request.order_by.split()[0]
        ordered = sorted(self.profiles, key=lambda p: getattr(p, field).ToDatetime(), reverse=True)
        page, token = self._page(ordered, request.page_size, request.page_token)
        return profile_pb2.ListProfilesResponse(profiles=page, next_page_token=token)

    async def ListProfileEvents(self, request: Any, context: Any) -> Any:
        profile_id = request.parent.rsplit("/", 1)[-1]
        start, end = request.start_time.ToDatetime(UTC), request.end_time.ToDatetime(UTC)
        matching = [
            e for e in self.events.get(profile_id, []) if start <= e.timestamp.ToDatetime(UTC) < end
        ]
        page, token = self._page(matching[::-1], request.page_size, request.page_token)
        return profile_pb2.ListProfileEventsResponse(events=page, next_page_token=token)

    async def ListSends(self, request: Any, context: Any) -> Any:
        page, token = self._page(self.sends, request.page_size, request.page_token)
        return delivery_pb2.ListSendsResponse(sends=page, next_page_token=token)


@pytest_asyncio.fixture
async def listings() -> AsyncIterator[tuple[Listings, str]]:
    servicer = Listings()
    for n in range(6):
        updated = DAY + timedelta(days=n % 3, hours=n)
        profile_id = f"prof{n}"
        servicer.profiles.append(
            profile_pb2.Profile(
                name=f"workspaces/acme/profiles/{profile_id}",
                profile_id=profile_id,
                version=n + 1,
                create_time=stamp(DAY - timedelta(days=30)),
                update_time=stamp(updated),
                last_seen_time=stamp(updated),
                identities=[
                    profile_pb2.LinkedIdentity(
                        identity=Identity(type="email", value=f"p{n}@example.com"), source="files"
                    )
                ],
            )
        )
        servicer.profiles[-1].traits.update({"first_name": f"P{n}", "orders": n})
        servicer.events[profile_id] = [
            Event(
                message_id=f"m{n}-{k}",
                type=EVENT_TYPE_TRACK,
                event="Product Viewed",
                anonymous_id=f"a{n}",
                source="http",
                timestamp=stamp(updated - timedelta(hours=k)),
            )
            for k in range(3)
        ]
        servicer.events[profile_id][0].properties.update({"sku": "S1", "price": "9.90"})
        servicer.sends.append(
            delivery_pb2.Send(
                name=f"workspaces/acme/sends/s{n}",
                idempotency_key=f"c1:prof{n}",
                campaign="c1",
                profile_id=profile_id,
                state=delivery_pb2.SEND_STATE_DELIVERED,
                provider="smtp",
                provider_message_id=f"<{n}@mw>",
                attempts=1,
                create_time=stamp(updated),
                category=delivery_pb2.CATEGORY_MARKETING,
            )
        )
    old = servicer.profiles[0]
    old.update_time.CopyFrom(stamp(DAY - timedelta(days=10)))  # changed before the window
    server = grpc.aio.server()
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, server)
    delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(None)


async def export(address: str, out: Path, tmp_path: Path, *extra: str) -> Result:
    args = [
        "files",
        "export",
        "--out",
        str(out),
        "--since",
        "2026-03-01",
        "--until",
        "2026-03-04",
        "--workspace",
        "acme",
        "--profile-address",
        address,
        "--delivery-address",
        address,
        "--page-size",
        "2",
        *extra,
    ]
    env = {"MAILWRIGHT_TOKEN": "export-token", "MAILWRIGHT_DATA_DIR": str(tmp_path)}
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)


async def test_the_export_is_hive_partitioned_parquet_that_duckdb_reads(
    listings: tuple[Listings, str], tmp_path: Path
) -> None:
    servicer, address = listings
    out = tmp_path / "warehouse"
    result = await export(address, out, tmp_path)
    assert result.exit_code == 0, result.output
    db = duckdb.connect()
    events = db.execute(
        "SELECT dt, count(*) FROM read_parquet(?, hive_partitioning = true) "
        "GROUP BY dt ORDER BY dt",
        [str(out / "events" / "*" / "*.parquet")],
    ).fetchall()
    # 18 events, 3 an hour apart per profile, ending at its last sight; profile 0's
    # two before 2026-03-01 00:00 fall outside the window, and one of profile 1's falls on
    # the evening of the first.
    assert [(str(dt), n) for dt, n in events] == [
        ("2026-03-01", 5),
        ("2026-03-02", 5),
        ("2026-03-03", 6),
    ]
    kinds = dict(
        db.execute(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?, "
            "hive_partitioning = true))",
            [str(out / "sends" / "*" / "*.parquet")],
        ).fetchall()
    )
    assert kinds["create_time"] == "TIMESTAMP WITH TIME ZONE"
    assert kinds["holdout"] == "BOOLEAN"
    price = db.execute(
        "SELECT json_extract_string(properties, '$.price') FROM read_parquet(?) "
        "WHERE message_id = 'm3-0'",
        [str(out / "events" / "*" / "*.parquet")],
    ).fetchone()
    assert price == ("9.90",)
    assert servicer.tokens
    assert set(servicer.tokens) == {"Bearer export-token"}


async def test_pyarrow_reads_each_dataset_with_its_explicit_schema(
    listings: tuple[Listings, str], tmp_path: Path
) -> None:
    _, address = listings
    out = tmp_path / "warehouse"
    assert (await export(address, out, tmp_path)).exit_code == 0
    for name, schema in (("profiles", PROFILES), ("events", EVENTS), ("sends", SENDS)):
        dataset = ds.dataset(out / name, format="parquet", partitioning="hive")
        assert dataset.schema.remove(dataset.schema.get_field_index("dt")) == schema
    profiles = ds.dataset(out / "profiles", format="parquet", partitioning="hive").to_table()
    assert sorted(profiles.column("profile_id").to_pylist()) == [f"prof{n}" for n in range(1, 6)]
    sends = ds.dataset(out / "sends", format="parquet", partitioning="hive")
    delivered = sends.to_table(filter=ds.field("dt") == "2026-03-02")
    assert delivered.column("state").to_pylist() == ["delivered", "delivered"]


async def test_exporting_a_window_again_replaces_its_files(
    listings: tuple[Listings, str], tmp_path: Path
) -> None:
    _, address = listings
    out = tmp_path / "warehouse"
    await export(address, out, tmp_path)
    first = sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
    await export(address, out, tmp_path)
    assert sorted(p.relative_to(out) for p in out.rglob("*.parquet")) == first
    assert not list(out.rglob("*.tmp"))
    count = (
        duckdb.connect()
        .execute("SELECT count(*) FROM read_parquet(?)", [str(out / "sends" / "*" / "*.parquet")])
        .fetchone()
    )
    assert count == (6,)


async def test_only_exports_the_named_datasets(
    listings: tuple[Listings, str], tmp_path: Path
) -> None:
    _, address = listings
    out = tmp_path / "warehouse"
    result = await export(address, out, tmp_path, "--only", "sends")
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["sends"]


async def test_a_service_that_cannot_list_yet_is_explained(
    listings: tuple[Listings, str], tmp_path: Path
) -> None:
    servicer, address = listings
    servicer.unimplemented = True
    result = await export(address, tmp_path / "w", tmp_path, "--only", "profiles")
    assert result.exit_code == 1
    assert "does not offer this listing yet" in result.output


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01"])
async def test_a_bad_since_is_named(since: str, tmp_path: Path) -> None:
    args = [
        "files",
        "export",
        "--out",
        str(tmp_path),
        "--since",
        since,
        "--workspace",
        "acme",
        "--token",
        "t",
    ]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 2
    assert "--since" in result.output
