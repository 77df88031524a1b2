"""A send's MIME message keeps its Message-ID across re-renders."""

from mailwright_render import to_mime
from mailwright_render.render import RenderedEmail, Sender


def _rendered(send_id: str) -> RenderedEmail:
    return RenderedEmail(
        profile_id="p1",
        send_id=send_id,
        subject="Hi",
        preheader="",
        html="<p>Hi</p>",
        text="Hi",
        headers=(),
        subject_variant="",
        preheader_variant="",
    )


def test_the_message_id_follows_the_send() -> None:
    sender = Sender(name="Shop", email="news@shop.example")
    first = to_mime(_rendered("send-1"), sender, "a@example.com")["Message-ID"]
    again = to_mime(_rendered("send-1"), sender, "a@example.com")["Message-ID"]
    other = to_mime(_rendered("send-2"), sender, "a@example.com")["Message-ID"]
    assert first == again
    assert first != other
    assert first.endswith("@shop.example>")
