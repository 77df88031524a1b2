"""Mailchimp audience sync: what the conformance suite does not say about Mailchimp."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from collections.abc import Callable, Sequence

import pytest

from mailwright.connectors import (
    AudienceChange,
    AudienceMember,
    ConnectorConfigError,
    ErrorKind,
    ProviderError,
    load_config,
)
from mailwright.testing.fakes import FakeServer, RecordedWaits
from mailwright_mailchimp.audience import MailchimpAudienceSync, subscriber_hash
from mailwright_mailchimp.batches import read_results
from mailwright_mailchimp.config import MailchimpConfig
from mailwright_mailchimp.fake import FakeMailchimp

MakeConfig = Callable[..., MailchimpConfig]


def change(
    added: Sequence[AudienceMember] = (), removed: Sequence[AudienceMember] = ()
) -> AudienceChange:
    return AudienceChange(
        "acme", "seg-1", "Cart abandoners", uuid.uuid4().hex, tuple(added), tuple(removed)
    )


def people(count: int, start: int = 0) -> list[AudienceMember]:
    return [
        AudienceMember(f"p{n}", email=f"user{n}@example.com", traits={"first_name": f"U{n}"})
        for n in range(start, start + count)
    ]


async def sync(
    config: MailchimpConfig, delta: AudienceChange
) -> tuple[object, MailchimpAudienceSync]:
    audience = MailchimpAudienceSync(config)
    try:
        return await audience.sync(delta), audience
    finally:
        await audience.aclose()


def test_subscriber_hash_is_the_md5_of_the_lowercased_address() -> None:
    expected = hashlib.md5(b"urist.mcvankab@freddiemac.com").hexdigest()
    assert subscriber_hash(" Urist.McVankab@FreddieMac.com ") == expected


def test_the_api_root_follows_the_keys_data_centre() -> None:
    config = load_config("mailchimp", MailchimpConfig, {"api_key": "a" * 32 + "-us21"}, environ={})
    assert config.api_root("audience sync") == "https://us21.api.mailchimp.com/3.0"


def test_a_key_without_data_centre_is_refused_naming_the_field() -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        load_config("mailchimp", MailchimpConfig, {"api_key": "a" * 32}, environ={})
    assert caught.value.field == "api_key"
    assert "a" * 32 not in str(caught.value)


def test_the_sync_names_the_missing_list_id() -> None:
    config = load_config("mailchimp", MailchimpConfig, {"api_key": "a" * 32 + "-us2"}, environ={})
    with pytest.raises(ConnectorConfigError) as caught:
        MailchimpAudienceSync(config)
    assert "MAILWRIGHT_CONNECTOR_MAILCHIMP_LIST_ID" in str(caught.value)


def test_merge_tags_are_checked() -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        load_config(
            "mailchimp", MailchimpConfig, {"merge_fields": {"first_name": "first"}}, environ={}
        )
    assert caught.value.field == "merge_fields"


async def test_traits_become_merge_fields_by_the_configured_table(
    mailchimp: FakeMailchimp, marketing_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    config = marketing_config(merge_fields={"first_name": "FNAME", "birthday": "BIRTHDAY"})
    member = AudienceMember(
        "p1",
        email="Ada@Example.com",
        traits={"first_name": "Ada", "birthday": "12/10", "city": "London"},
    )
    await sync(config, change(added=[member]))
    stored = mailchimp.member("ada@example.com")
    assert stored is not None
    assert stored["merge_fields"]["FNAME"] == "Ada"
    assert stored["merge_fields"]["BIRTHDAY"] == "12/10"
    assert stored["status"] == "subscribed"
    assert [t["name"] for t in stored["tags"]] == ["Cart abandoners"]


async def test_an_unsubscribed_member_stays_unsubscribed(
    mailchimp: FakeMailchimp, marketing_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    mailchimp.add_member("gone@example.com", status="unsubscribed")
    await sync(marketing_config(), change(added=[AudienceMember("p", email="gone@example.com")]))
    stored = mailchimp.member("gone@example.com")
    assert stored is not None
    assert stored["status"] == "unsubscribed"


async def test_new_members_get_status_if_new(
    mailchimp: FakeMailchimp, marketing_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    await sync(marketing_config(status_if_new="pending"), change(added=people(1)))
    stored = mailchimp.member("user0@example.com")
    assert stored is not None
    assert stored["status"] == "pending"


async def test_an_unknown_merge_tag_is_a_member_failure_with_mailchimps_message(
    mailchimp: FakeMailchimp, marketing_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    config = marketing_config(merge_fields={"first_name": "FIRST"})
    result, _ = await sync(config, change(added=people(2)))
    assert [f.kind for f in result.failures] == [ErrorKind.INVALID] * 2  # type: ignore[attr-defined]
    assert "merge fields were invalid" in result.failures[0].detail  # type: ignore[attr-defined]


@pytest.mark.parametrize("batch_threshold", [500, 1], ids=["direct", "batch operations"])
async def test_a_permanently_deleted_address_is_a_rejected_member(
    mailchimp: FakeMailchimp,
    marketing_config: MakeConfig,
    recorded_waits: RecordedWaits,
    batch_threshold: int,
) -> None:
    # Mailchimp refuses to re-import a permanently deleted contact (400 "Forgotten Email
    # Not Subscribed"): a refusal of the person, not a wrong request.
    mailchimp.forget("user1@example.com")
    result, _ = await sync(
        marketing_config(batch_threshold=batch_threshold), change(added=people(3))
    )
    assert result.added == 2  # type: ignore[attr-defined]
    assert [(f.profile_id, f.kind) for f in result.failures] == [  # type: ignore[attr-defined]
        ("p1", ErrorKind.REJECTED)
    ]
    assert "Forgotten Email Not Subscribed" in result.failures[0].detail  # type: ignore[attr-defined]


async def test_never_more_than_ten_requests_at_once(
    mailchimp: FakeMailchimp, marketing_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    mailchimp.latency = 0.02
    config = marketing_config(batch_threshold=100)
    result, audience = await sync(config, change(added=people(40)))
    assert result.added == 40  # type: ignore[attr-defined]
    assert mailchimp.throttled == 0
    assert mailchimp.most_in_flight <= 10
    assert audience.client.most_in_flight == 10


async def test_a_lower_connection_setting_leaves_room_for_the_users_other_apps(
    mailchimp: FakeMailchimp, marketing_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    mailchimp.latency = 0.02
    mailchimp.max_connections = 4  # the user's other apps hold six
    config = marketing_config(batch_threshold=100, max_connections=4)
    result, audience = await sync(config, change(added=people(30)))
    assert result.added == 30  # type: ignore[attr-defined]
    assert mailchimp.throttled == 0
    assert audience.client.most_in_flight == 4


async def test_a_large_change_goes_through_batch_operations(
    mailchimp: FakeMailchimp,
    mailchimp_server: FakeServer,
    marketing_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    members = people(120)
    result, _ = await sync(marketing_config(batch_operations=50), change(added=members))
    assert result.added == 120  # type: ignore[attr-defined]
    assert len(mailchimp_server.requests_to("/3.0/batches", "POST")) == 6  # 3 of PUTs, 3 of tags
    assert not mailchimp_server.requests_to("/3.0/lists")
    assert mailchimp.tagged("Cart abandoners") == {m.email for m in members}
    assert 1.0 in recorded_waits.seconds  # polled at the configured interval


async def test_batch_results_are_fetched_without_the_api_key(
    mailchimp: FakeMailchimp,
    mailchimp_server: FakeServer,
    marketing_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    await sync(marketing_config(batch_threshold=1), change(added=people(3)))
    downloads = mailchimp_server.requests_to("/batch-results")
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads)


async def test_a_refused_member_in_a_batch_is_a_failure_and_the_rest_sync(
    mailchimp: FakeMailchimp, marketing_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    bad = AudienceMember("p-bad", email="nobody@invalid")
    result, _ = await sync(marketing_config(batch_threshold=1), change(added=[*people(3), bad]))
    assert result.added == 3  # type: ignore[attr-defined]
    assert [f.profile_id for f in result.failures] == ["p-bad"]  # type: ignore[attr-defined]
    assert "<address>" in result.failures[0].detail  # type: ignore[attr-defined]


async def test_a_batch_that_never_finishes_gives_up_clearly(
    mailchimp: FakeMailchimp, marketing_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    mailchimp.batch_polls = 10**6
    config = marketing_config(batch_threshold=1, batch_timeout="10s")
    with pytest.raises(ProviderError) as caught:
        await sync(config, change(added=people(2)))
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert "still started" in caught.value.detail


def test_results_archive_reads_only_json_files() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = json.dumps(
            [{"status_code": 200, "operation_id": "put:0", "response": "{}"}]
        ).encode()
        info = tarfile.TarInfo("b1/0.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("b1/evil.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    results = read_results(buffer.getvalue())
    assert list(results) == ["put:0"]
    assert results["put:0"].ok


def test_an_unreadable_archive_is_a_transient_error() -> None:
    with pytest.raises(ProviderError) as caught:
        read_results(b"not a tarball")
    assert caught.value.kind is ErrorKind.TRANSIENT


async def test_the_api_key_travels_as_basic_auth_and_never_in_errors(
    mailchimp: FakeMailchimp,
    mailchimp_server: FakeServer,
    marketing_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    config = marketing_config()
    mailchimp.api_key = "other0123456789-us21"
    with pytest.raises(ProviderError) as caught:
        await sync(config, change(added=people(1)))
    assert caught.value.kind is ErrorKind.AUTH
    assert "API Key Invalid" in caught.value.detail
    key = config.api_key.get_secret_value() if config.api_key else ""
    assert key not in str(caught.value)
    assert mailchimp_server.requests[0].headers["authorization"].startswith("Basic ")
    assert subscriber_hash("user0@example.com") in mailchimp_server.requests[0].path
