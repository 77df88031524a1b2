"""RenderBatch recipients whose traits and context travel as JSON (`traits_json`,
`context_json`): the batch encoding, read like the Structs it stands in for."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from mailwright.render.v1 import render_pb2 as pb

if TYPE_CHECKING:
    from mailwright.render.v1.render_pb2_grpc import RenderServiceAsyncStub as Stub

SENDER = pb.RenderOptions(from_address="news@shop.example", from_name="Shop")
BODY = (
    "<p>{{ first_name|default('there') }} {{ orders|default(0) }}"
    '{% for item in content.picks|default([]) %} <a href="{{ item.url }}">{{ item.name }}</a>'
    "{% endfor %} {{ view_in_browser_url }} {{ send.campaign.name }}</p>"
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}</p>'
)
TRAITS: dict[str, Any] = {"first_name": "Ann <3", "orders": 3}
CONTEXT: dict[str, Any] = {
    "picks": [{"name": "Boots", "url": "https://shop.example/p/1"}],
    "links": {"view_in_browser": "https://shop.example/v/1"},
    "campaign": {"name": "spring"},
}


def _json_recipient(number: int = 1, **fields: Any) -> pb.Recipient:
    return pb.Recipient(
        send_id=f"send-{number}", profile_id=f"p{number}", email=f"p{number}@example.com", **fields
    )


async def _batch(rpc: Stub, version: str, *recipients: pb.Recipient) -> pb.RenderBatchResponse:
    return await rpc.RenderBatch(
        pb.RenderBatchRequest(version=version, recipients=list(recipients), options=SENDER)
    )


async def test_json_traits_and_context_render_like_their_structs(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    made = await svc.published(rpc, body=BODY)
    as_structs = svc.recipient(1, **TRAITS)
    as_structs.context.update(CONTEXT)
    as_json = _json_recipient(
        2, traits_json=json.dumps(TRAITS).encode(), context_json=json.dumps(CONTEXT).encode()
    )
    reply = await _batch(rpc, made.version.name, as_structs, as_json)
    struct_html, json_html = (result.message.html for result in reply.results)
    assert "Ann &lt;3 3 <a href=" in json_html
    assert "https://shop.example/v/1 spring</p>" in json_html
    # Only the tracking tokens differ: they are signed for each recipient's own send.
    assert _untokened(json_html) == _untokened(struct_html)


def _untokened(html: str) -> str:
    return " ".join(
        part.rsplit("/", 1)[0] if "/t/" in part or "/u/" in part else part
        for part in html.replace('"', " ").split()
    )


async def test_json_numbers_keep_their_type(rpc: Stub, svc: SimpleNamespace) -> None:
    made = await svc.published(rpc, body="<p>{{ a }} {{ b }} {{ c }} {{ d }}</p>")
    data = b'{"a": 3, "b": 0.5, "c": 3.0, "d": 12345678901234567}'
    reply = await _batch(rpc, made.version.name, _json_recipient(traits_json=data))
    assert "<p>3 0.5 3.0 12345678901234567</p>" in reply.results[0].message.html


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"first_name": "Ann"', "is not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b'"Ann"', "must be a JSON object, not str"),
    ],
)
async def test_a_recipient_whose_json_is_not_an_object_is_named(
    rpc: Stub, svc: SimpleNamespace, data: bytes, expected: str
) -> None:
    made = await svc.published(rpc)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _batch(
            rpc, made.version.name, _json_recipient(1), _json_recipient(2, context_json=data)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = svc.violations(raised.value)
    assert field == "recipients[1].context_json"
    assert description.startswith(expected)


async def test_traits_as_a_struct_and_as_json_at_once_are_refused(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    made = await svc.published(rpc)
    both = svc.recipient(1, first_name="Ann")
    both.traits_json = b'{"first_name": "Bea"}'
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _batch(rpc, made.version.name, both)
    assert svc.violations(raised.value) == [
        ("recipients[0].traits_json", "set traits or traits_json, not both")
    ]


async def test_links_in_json_context_must_be_an_object(rpc: Stub, svc: SimpleNamespace) -> None:
    made = await svc.published(rpc)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _batch(rpc, made.version.name, _json_recipient(context_json=b'{"links": "x"}'))
    assert svc.violations(raised.value) == [
        ("recipients[0].context.links", "must be an object of URLs")
    ]
