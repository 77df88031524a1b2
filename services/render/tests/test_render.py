"""Rendering: variants, locales, HubSpot tokens, batches, output limits and MIME."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from decimal import Decimal
from email import policy
from types import SimpleNamespace

import pytest

from mailwright_render import (
    MissingPolicy,
    RenderError,
    RenderFailure,
    RenderLimitExceeded,
    RenderLimits,
    SandboxViolation,
    TemplateKind,
    TemplateSource,
    Variant,
    compile_template,
    pick_variant,
    to_mime,
)
from mailwright_render.context import Delivery, Recipient


def variants_template(kit: SimpleNamespace) -> object:
    return compile_template(
        TemplateSource(
            name="t",
            subject=(Variant("a", "Hi {{ first_name }}"), Variant("b", "*|FNAME|*, a deal", 3.0)),
            preheader=(Variant("x", "Picked for you"), Variant("y", "Only today")),
            html="<html><body><p>{{ subject }} / {{ preheader }}</p></body></html>",
            kind=TemplateKind.TRANSACTIONAL,
        )
    )


def test_the_caller_picks_subject_and_preheader_variants(kit: SimpleNamespace) -> None:
    compiled = variants_template(kit)
    rendered = kit.render(
        compiled,
        {"first_name": "Ann"},
        delivery_fields={"subject_variant": "b", "preheader_variant": "y"},
    )
    assert (rendered.subject, rendered.preheader) == ("Ann, a deal", "Only today")
    assert (rendered.subject_variant, rendered.preheader_variant) == ("b", "y")
    assert "<p>Ann, a deal / Only today</p>" in rendered.html


def test_the_first_variant_is_the_default(kit: SimpleNamespace) -> None:
    rendered = kit.render(variants_template(kit), {"first_name": "Ann"})
    assert (rendered.subject, rendered.preheader) == ("Hi Ann", "Picked for you")


def test_the_preheader_is_hidden_at_the_top_of_the_body(kit: SimpleNamespace) -> None:
    html = kit.render(variants_template(kit), {"first_name": "Ann"}).html
    assert html.startswith('<html><body><div style="display:none;')
    assert "Picked for you&#847;" in html


def test_an_unknown_variant_is_a_render_error(kit: SimpleNamespace) -> None:
    with pytest.raises(RenderError, match="variant 'zz'"):
        kit.render(variants_template(kit), delivery_fields={"subject_variant": "zz"})


def test_subjects_cannot_carry_header_breaks(kit: SimpleNamespace) -> None:
    rendered = kit.render(
        kit.build(subject="Hi {{ name }}"), {"name": "x\r\nBcc: evil@example.com"}
    )
    assert rendered.subject == "Hi x Bcc: evil@example.com"


def test_pick_variant_is_deterministic_and_weighted() -> None:
    variants = (Variant("a", "A", 1.0), Variant("b", "B", 3.0), Variant("off", "C", 0.0))
    picks = [pick_variant(variants, f"profile-{i}").key for i in range(4000)]
    assert picks == [pick_variant(variants, f"profile-{i}").key for i in range(4000)]
    assert "off" not in picks
    assert 0.70 < picks.count("b") / len(picks) < 0.80


@pytest.mark.parametrize(
    ("locale", "zone", "expected"),
    [
        ("en_US", "America/New_York",
         "March 1, 2024 | Mar 1, 2024, 5:30:00 AM | 1,234.5 | 25% | €1,234.50 | 2 months ago"),
        ("de_DE", "Europe/Berlin",
         "1. März 2024 | 01.03.2024, 11:30:00 | 1.234,5 | 25 % | 1.234,50 € | vor 2 Monaten"),
        ("fr_FR", "Asia/Tokyo",
         "1 mars 2024 | 1 mars 2024, 19:30:00 | 1 234,5 | 25 % | 1 234,50 € | il y a 2 mois"),
    ],
)  # fmt: skip
def test_filters_follow_the_recipients_locale_and_zone(
    kit: SimpleNamespace, locale: str, zone: str, expected: str
) -> None:
    html = (
        "<p>{{ joined|date('long') }} | {{ last_seen|datetime }} | {{ points|number }}"
        " | {{ 0.25|percent }} | {{ balance|money }} | {{ last_seen|relative_time }}</p>"
    )
    traits = {
        "joined": "2024-03-01",
        "last_seen": "2024-03-01T10:30:00Z",
        "points": 1234.5,
        "balance": {"amount": "1234.5", "currency": "EUR"},
    }
    rendered = kit.render(
        kit.build(html), traits, recipient_fields={"locale": locale, "timezone": zone}
    )
    # CLDR separates with no-break spaces; compare them as spaces.
    assert rendered.text.strip().replace("\u202f", " ").replace("\xa0", " ") == expected


def test_money_takes_decimals_and_an_iso_code(kit: SimpleNamespace) -> None:
    compiled = kit.build("<p>{{ total|money('JPY') }} {{ total|money('usd') }}</p>")
    rendered = kit.render(compiled, {"total": Decimal("1999.5")})
    assert rendered.text.strip() == "¥2,000 $1,999.50"


def test_an_invalid_currency_fails_the_render(kit: SimpleNamespace) -> None:
    with pytest.raises(RenderError, match="ISO 4217"):
        kit.render(kit.build("<p>{{ 5|money('EURO') }}</p>"))


def test_unknown_locales_and_zones_fall_back(kit: SimpleNamespace) -> None:
    rendered = kit.render(
        kit.build("<p>{{ 1234.5|number }} {{ now().tzinfo }}</p>"),
        recipient_fields={"locale": "xx_NOPE", "timezone": "../../etc/passwd"},
    )
    assert rendered.text.strip() == "1,234.5 UTC"


def test_hubspot_tokens_resolve_against_the_profile(kit: SimpleNamespace) -> None:
    html = (
        "<p>{{ contact.firstname }} {{ contact.lastname }} {{ contact.email }} {{ contact.plan }}"
        " {{ personalization_token('contact.jobtitle', 'friend') }}"
        " {{ site_settings.company_name }}</p>"
    )
    traits = {"first_name": "Ann", "last_name": "Lee", "plan": "pro"}
    rendered = kit.render(kit.build(html), traits)
    assert rendered.text.strip() == "Ann Lee ann@example.com pro friend Shop Inc"


def test_platform_names_win_over_traits(kit: SimpleNamespace) -> None:
    rendered = kit.render(
        kit.build("<p>{{ unsubscribe_url }}|{{ traits.unsubscribe_url }}|{{ range }}</p>"),
        {"unsubscribe_url": "https://evil.example", "range": "r"},
        delivery_fields={"links": {"unsubscribe": "https://u.example"}},
    )
    assert rendered.text.startswith("https://u.example|https://evil.example|")


def test_the_strict_policy_fails_on_a_missing_variable(kit: SimpleNamespace) -> None:
    compiled = kit.build("<p>\n{{ first_name }}</p>", missing=MissingPolicy.ERROR)
    with pytest.raises(RenderError) as failed:
        kit.render(compiled)
    assert failed.value.part == "html"
    assert "first_name" in str(failed.value)


def test_a_render_that_reaches_for_internals_is_a_sandbox_violation(kit: SimpleNamespace) -> None:
    compiled = kit.build("<p>{{ x|attr(name) }}</p>")
    with pytest.raises(SandboxViolation) as failed:
        kit.render(compiled, {"x": 1, "name": "__class__"})
    assert failed.value.part == "html"


def test_output_is_bounded_per_part(kit: SimpleNamespace) -> None:
    compiled = kit.build("<p>{{ blob }}</p>")
    with pytest.raises(RenderLimitExceeded):
        kit.render(compiled, {"blob": "x" * 5000}, limits=RenderLimits(max_output_chars=4000))


def test_a_batch_renders_everyone_and_isolates_failures(kit: SimpleNamespace) -> None:
    compiled = kit.build("<p>{{ (100 / divisor)|round }}</p>")
    items = [
        (Recipient(f"p{i}", f"u{i}@example.com", {"divisor": i}), kit.delivery(send_id=f"s{i}"))
        for i in (4, 0, 5)
    ]
    outcomes = list(kit.renderer().render_batch(compiled, kit.SENDER, items))
    assert [type(o).__name__ for o in outcomes] == [
        "RenderedEmail",
        "RenderFailure",
        "RenderedEmail",
    ]
    failure = outcomes[1]
    assert isinstance(failure, RenderFailure)
    assert (failure.profile_id, failure.send_id) == ("p0", "s0")
    assert "ZeroDivisionError" in str(failure.error)
    assert outcomes[2].text.strip() == "20.0"  # type: ignore[union-attr]


def test_the_mime_message_parses_back(kit: SimpleNamespace) -> None:
    compiled = kit.build(
        f"<html><body><p>Grüße, {{{{ name }}}} — {'x' * 1200}</p>{kit.FOOTER}</body></html>",
        subject="Grüße {{ name }}",
        kind=TemplateKind.MARKETING,
    )
    rendered = kit.render(compiled, {"name": "Zoë"}, tracking=True)
    date = datetime(2024, 5, 1, 12, tzinfo=UTC)
    message = to_mime(rendered, kit.SENDER, "zoe@example.com", to_name="Zoë", date=date)
    raw = message.as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Grüße Zoë"
    assert parsed["To"] == "Zoë <zoe@example.com>"
    assert parsed["From"] == "Shop <news@shop.example>"
    assert parsed["Message-ID"].endswith("@shop.example>")
    assert parsed["Date"] == "Wed, 01 May 2024 12:00:00 +0000"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == rendered.html


def test_mime_extra_headers_cannot_replace_structural_ones(kit: SimpleNamespace) -> None:
    rendered = kit.render(kit.build())
    with pytest.raises(ValueError, match="Subject"):
        to_mime(rendered, kit.SENDER, "a@example.com", extra_headers=[("Subject", "x")])


def test_decoded_recipients_and_deliveries_equal_the_dataclasses_built_as_usual() -> None:
    recipient = {
        "profile_id": "p1",
        "email": "a@example.com",
        "traits": {"first_name": "Ada"},
        "segments": frozenset({"vip"}),
        "locale": "de",
        "timezone": None,
        "content": {"items": [1]},
    }
    delivery = {
        "workspace": "w",
        "send_id": "s",
        "campaign": {"name": "c"},
        "links": {},
        "subject_variant": "b",
        "preheader_variant": None,
    }
    decoded = Recipient.decoded(**recipient)  # type: ignore[arg-type]
    assert decoded == Recipient(**recipient)  # type: ignore[arg-type]
    assert Delivery.decoded(**delivery) == Delivery(**delivery)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        decoded.email = "b@example.com"  # type: ignore[misc]
    with pytest.raises(ValueError, match="profile_id"):
        Recipient.decoded(**{**recipient, "profile_id": ""})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="send_id"):
        Delivery.decoded(**{**delivery, "send_id": ""})  # type: ignore[arg-type]
