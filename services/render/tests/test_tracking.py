"""Tracked links, the open pixel and unsubscribe headers, verified with the SDK's signer."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from mailwright.tracking import (
    ExpiredToken,
    ForgedToken,
    SigningKey,
    TokenKind,
    TrackingSigner,
    parse_tracking_path,
)
from mailwright_render import RenderLimits, TemplateKind
from mailwright_render.errors import RenderLimitExceeded

BODY = """<html><body>
<a href="https://shop.example/sale?a=1&amp;b=2">Sale</a>
<a href="{{ product_url }}">Product</a>
<a href="https://shop.example/p/{{ sku }}?ref=mail">By sku</a>
<a href="mailto:help@shop.example">Mail us</a>
<a href="tel:+15555550100">Call</a>
<a href="#top">Top</a>
<a href="https://shop.example/private" data-mw-notrack>Private</a>
<a href="{{ unsubscribe_url }}">Unsubscribe</a>
<p>{{ sender.address }}</p>
</body></html>"""
TRAITS = {"product_url": "https://shop.example/p/9?x=1&y=2", "sku": "SKU-1"}


def hrefs(html: str) -> list[str]:
    return [match.replace("&amp;", "&") for match in re.findall(r'href="([^"]*)"', html)]


def verify(kit: SimpleNamespace, url: str, kind: TokenKind) -> object:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "https://t.example"
    token_kind, token = parse_tracking_path(parts.path)
    assert token_kind is kind
    return kit.SIGNER.verify(token, kind=kind, now=kit.NOW.timestamp())


@pytest.fixture
def rendered(kit: SimpleNamespace) -> object:
    compiled = kit.build(BODY, kind=TemplateKind.MARKETING)
    return kit.render(compiled, TRAITS, tracking=True)


def test_trackable_links_become_signed_click_urls(kit: SimpleNamespace, rendered: object) -> None:
    links = hrefs(rendered.html)  # type: ignore[attr-defined]
    targets = [verify(kit, link, TokenKind.CLICK).url for link in links[:3]]  # type: ignore[attr-defined]
    assert targets == [
        "https://shop.example/sale?a=1&b=2",
        "https://shop.example/p/9?x=1&y=2",
        "https://shop.example/p/SKU-1?ref=mail",
    ]


def test_claims_name_the_workspace_send_and_profile(kit: SimpleNamespace, rendered: object) -> None:
    recipient = "p1"  # the conftest recipient
    links = hrefs(rendered.html)  # type: ignore[attr-defined]
    for link, kind in ((links[0], TokenKind.CLICK), (links[7], TokenKind.UNSUBSCRIBE)):
        claims = verify(kit, link, kind)
        assert (claims.workspace, claims.send_id, claims.profile_id) == (  # type: ignore[attr-defined]
            "ws1",
            "send1",
            recipient,
        )
    pixel = re.search(r'<img src="([^"]*)"', rendered.html).group(1)  # type: ignore[attr-defined,union-attr]
    assert verify(kit, pixel, TokenKind.OPEN).profile_id == recipient  # type: ignore[attr-defined]


def test_untracked_links_stay_as_written(rendered: object) -> None:
    links = hrefs(rendered.html)  # type: ignore[attr-defined]
    assert links[3:7] == [
        "mailto:help@shop.example",
        "tel:+15555550100",
        "#top",
        "https://shop.example/private",
    ]
    assert "data-mw-notrack" not in rendered.html  # type: ignore[attr-defined]


def test_the_unsubscribe_link_is_a_signed_one_click_url(
    kit: SimpleNamespace, rendered: object
) -> None:
    unsubscribe = hrefs(rendered.html)[7]  # type: ignore[attr-defined]
    claims = verify(kit, unsubscribe, TokenKind.UNSUBSCRIBE)
    assert claims.send_id == "send1"  # type: ignore[attr-defined]


def test_headers_offer_one_click_unsubscribe(kit: SimpleNamespace, rendered: object) -> None:
    headers = dict(rendered.headers)  # type: ignore[attr-defined]
    unsubscribe = hrefs(rendered.html)[7]  # type: ignore[attr-defined]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsubscribe.rsplit("/", 1)[1]
    assert headers["List-Unsubscribe"] == (
        f"<{unsubscribe}>, <mailto:unsub@t.example?subject=unsubscribe-{token}>"
    )


def test_transactional_mail_carries_no_unsubscribe_headers(kit: SimpleNamespace) -> None:
    rendered = kit.render(kit.build("<p>receipt</p>"), tracking=True)
    assert rendered.headers == ()


def test_the_open_pixel_sits_before_the_end_of_body(kit: SimpleNamespace, rendered: object) -> None:
    html: str = rendered.html  # type: ignore[attr-defined]
    pixel = re.search(r'<img src="([^"]+)" width="1" height="1"[^>]*/>\s*</body>', html)
    assert pixel is not None
    verify(kit, pixel.group(1).replace("&amp;", "&"), TokenKind.OPEN)
    assert pixel.group(1).endswith(".gif")


def test_text_links_are_tracked_with_the_same_urls(rendered: object) -> None:
    html_links = set(hrefs(rendered.html)[:3])  # type: ignore[attr-defined]
    text = rendered.text  # type: ignore[attr-defined]
    assert all(f"({link})" in text for link in html_links)


def test_each_distinct_url_is_signed_once_per_message(kit: SimpleNamespace) -> None:
    compiled = kit.build('<a href="https://a.example/">1</a><a href="https://a.example/">2</a>')
    rendered = kit.render(compiled, tracking=True)
    first, second = hrefs(rendered.html)
    assert first == second


def test_script_urls_from_data_are_neutralised(kit: SimpleNamespace) -> None:
    compiled = kit.build('<a href="{{ link }}">x</a>')
    for tracking in (True, False):
        rendered = kit.render(compiled, {"link": " javascript:alert(1)"}, tracking=tracking)
        assert hrefs(rendered.html) == ["#"]


def test_without_tracking_links_are_left_alone(kit: SimpleNamespace) -> None:
    compiled = kit.build(BODY, kind=TemplateKind.MARKETING)
    rendered = kit.render(
        compiled, TRAITS, delivery_fields={"links": {"unsubscribe": "https://u.example/x"}}
    )
    assert hrefs(rendered.html)[:3] == [
        "https://shop.example/sale?a=1&b=2",
        "https://shop.example/p/9?x=1&y=2",
        "https://shop.example/p/SKU-1?ref=mail",
    ]
    assert hrefs(rendered.html)[7] == "https://u.example/x"
    assert "<img" not in rendered.html


def test_tokens_from_another_key_or_past_their_expiry_are_refused(
    kit: SimpleNamespace, rendered: object
) -> None:
    token = urlsplit(hrefs(rendered.html)[0]).path.rsplit("/", 1)[1]  # type: ignore[attr-defined]
    with pytest.raises(ForgedToken):
        TrackingSigner([SigningKey("k1", b"z" * 32)]).verify(token)
    with pytest.raises(ExpiredToken):
        kit.SIGNER.verify(token, now=kit.NOW.timestamp() + 10**9)


def test_a_renderer_running_into_the_next_hour_signs_with_that_hours_expiries(
    kit: SimpleNamespace,
) -> None:
    times = iter([kit.NOW, kit.NOW, kit.NOW + timedelta(minutes=70)])
    engine = kit.renderer(tracking=kit.TRACKING, clock=lambda: next(times))
    compiled = kit.build(BODY, kind=TemplateKind.MARKETING)
    expiries = []
    for number in range(3):
        delivery = kit.delivery(send_id=f"send{number}")
        rendered = engine.render(compiled, kit.recipient(TRAITS), delivery, kit.SENDER)
        links = hrefs(rendered.html)
        claims = [verify(kit, link, TokenKind.CLICK) for link in links[:3]]
        assert {claim.send_id for claim in claims} == {f"send{number}"}  # type: ignore[attr-defined]
        unsubscribe = verify(kit, links[7], TokenKind.UNSUBSCRIBE)
        expiries.append((claims[0].expires_at, unsubscribe.expires_at))  # type: ignore[attr-defined]
    hour = int(kit.NOW.timestamp()) // 3600 * 3600
    day = 24 * 3600
    assert expiries == [
        (hour + 180 * day, hour + 400 * day),
        (hour + 180 * day, hour + 400 * day),
        (hour + 3600 + 180 * day, hour + 3600 + 400 * day),
    ]


def test_the_platforms_links_cost_no_operations_of_the_authors_budget(
    kit: SimpleNamespace,
) -> None:
    links = "".join(f'<a href="https://shop.example/{n}">{n}</a>' for n in range(30))
    compiled = kit.build(f"<p>{links}{{% for i in range(3) %}}{{{{ i }}}}{{% endfor %}}</p>")
    small = RenderLimits(max_operations=10)
    rendered = kit.render(compiled, tracking=True, limits=small)
    assert len(hrefs(rendered.html)) == 30
    looping = kit.build("<p>{% for i in range(30) %}{{ i }}{% endfor %}</p>")
    with pytest.raises(RenderLimitExceeded, match="loop iterations and calls"):
        kit.render(looping, tracking=True, limits=small)
