"""SMTP replies map to the error kinds delivery acts on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.connectors import ErrorKind
from mailwright_smtp.replies import (
    Phase,
    classify,
    enhanced_status,
    reply_error,
    reported_bounce_type,
)

K = ErrorKind


@pytest.mark.parametrize(
    ("code", "text", "phase", "kind"),
    [
        (550, "5.1.1 User unknown", Phase.RCPT, K.HARD_BOUNCE),
        (550, "Mailbox unavailable", Phase.RCPT, K.HARD_BOUNCE),
        (553, "5.1.3 Bad recipient address syntax", Phase.RCPT, K.HARD_BOUNCE),
        (550, "5.1.10 Null MX", Phase.RCPT, K.HARD_BOUNCE),
        (550, "5.2.1 Mailbox disabled", Phase.RCPT, K.HARD_BOUNCE),
        (552, "5.2.2 Mailbox full", Phase.RCPT, K.SOFT_BOUNCE),
        (552, "Requested action aborted: exceeded storage allocation", Phase.RCPT, K.SOFT_BOUNCE),
        (552, "5.3.4 Message too big for system", Phase.DATA, K.INVALID),
        (552, "Message size exceeds fixed limit", Phase.DATA, K.INVALID),
        (554, "5.7.1 Message rejected as spam", Phase.DATA, K.REJECTED),
        (550, "5.7.26 Unauthenticated email is not accepted (DMARC)", Phase.DATA, K.REJECTED),
        (550, "Content rejected", Phase.DATA, K.REJECTED),
        (550, "5.1.1 Sender address rejected", Phase.MAIL, K.REJECTED),
        (553, "Sender address not allowed", Phase.MAIL, K.REJECTED),
        (550, "5.1.8 Bad sender's system address", Phase.RCPT, K.REJECTED),
        (550, "5.4.4 Unable to route", Phase.RCPT, K.HARD_BOUNCE),
        (550, "5.4.5 Daily user sending quota exceeded", Phase.DATA, K.RATE_LIMITED),
        (535, "5.7.8 Authentication credentials invalid", Phase.CONNECT, K.AUTH),
        (530, "5.7.0 Authentication required", Phase.MAIL, K.AUTH),
        (550, "5.7.8 Authentication credentials invalid", Phase.MAIL, K.AUTH),
        (501, "5.5.4 Syntax error in parameters", Phase.MAIL, K.INVALID),
        (503, "5.5.1 Bad sequence of commands", Phase.RCPT, K.INVALID),
        (421, "4.7.0 Service not available, closing channel", Phase.CONNECT, K.RATE_LIMITED),
        (451, "4.3.0 Local error in processing", Phase.DATA, K.RATE_LIMITED),
        (450, "4.2.1 Mailbox busy", Phase.RCPT, K.SOFT_BOUNCE),
        (452, "4.2.2 Mailbox full", Phase.RCPT, K.SOFT_BOUNCE),
        (452, "Insufficient system storage", Phase.RCPT, K.SOFT_BOUNCE),
        (454, "4.7.0 TLS not available due to temporary reason", Phase.MAIL, K.TRANSIENT),
        (450, "4.7.28 Rate limited due to unusual activity", Phase.RCPT, K.RATE_LIMITED),
        (450, "Too many messages, slow down", Phase.DATA, K.RATE_LIMITED),
        (441, "4.4.1 No answer from host", Phase.DATA, K.TRANSIENT),
    ],
)
def test_a_reply_maps_to_its_kind(code: int, text: str, phase: Phase, kind: ErrorKind) -> None:
    assert classify(code, text, phase) is kind


def test_the_enhanced_status_is_read_only_at_the_start() -> None:
    assert enhanced_status("5.1.1 <a@b.c>: unknown") == (5, 1, 1)
    assert enhanced_status("User unknown 5.1.1") is None
    assert enhanced_status("5.1.1.2 nonsense") is None


def test_a_rate_limit_carries_the_configured_wait() -> None:
    error = reply_error(421, "4.7.0 Try later", Phase.RCPT, rate_limited_wait=timedelta(minutes=2))

    assert error.kind is K.RATE_LIMITED
    assert error.retry_after == timedelta(minutes=2)
    assert error.code == "421 4.7.0"


def test_other_errors_carry_no_wait() -> None:
    error = reply_error(550, "5.1.1 No such user", Phase.RCPT, rate_limited_wait=timedelta(1))

    assert error.retry_after is None


reply_texts = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda c, s, d, rest: f"{c}.{s}.{d} {rest}",
        st.sampled_from([4, 5]),
        st.integers(0, 9),
        st.integers(0, 30),
        st.text(max_size=40),
    ),
)


@given(code=st.integers(400, 499), text=reply_texts, phase=st.sampled_from(Phase))
def test_a_temporary_reply_is_always_retryable(code: int, text: str, phase: Phase) -> None:
    assert classify(code, text, phase).retryable


@given(code=st.integers(500, 599), text=reply_texts, phase=st.sampled_from(Phase))
def test_a_permanent_reply_is_never_a_transient_error(code: int, text: str, phase: Phase) -> None:
    kind = classify(code, text, phase)

    assert kind is not K.TRANSIENT
    if kind.retryable:
        assert kind in (K.SOFT_BOUNCE, K.RATE_LIMITED)


@given(text=reply_texts)
def test_the_recipient_is_never_blamed_for_a_refused_sender(text: str) -> None:
    assert classify(550, text, Phase.MAIL) not in (K.HARD_BOUNCE, K.SOFT_BOUNCE)


@pytest.mark.parametrize(
    ("status", "diagnostic", "bounce_type"),
    [
        ((5, 1, 1), "550 5.1.1 <<address>>: Recipient address rejected", "hard"),
        ((5, 1, 10), "550 5.1.10 RESOLVER.ADR.RecipientNotFound", "hard"),
        ((5, 0, 0), "", "hard"),
        ((5, 7, 1), "550 5.7.1 Message rejected as spam", "hard"),
        ((5, 2, 2), "552 5.2.2 Mailbox full", "soft"),
        ((5, 2, 2), "", "soft"),
        ((5, 0, 0), "552 Requested action aborted: exceeded storage allocation", "soft"),
        ((5, 1, 1), "452 contradicts the status", "hard"),
        ((4, 4, 1), "connect to mx.example.net: Connection timed out", "soft"),
        ((4, 2, 2), "452 4.2.2 Mailbox full", "soft"),
    ],
)
def test_a_reported_failure_is_hard_or_soft_by_the_same_table(
    status: tuple[int, int, int], diagnostic: str, bounce_type: str
) -> None:
    assert reported_bounce_type(status, diagnostic) == bounce_type
