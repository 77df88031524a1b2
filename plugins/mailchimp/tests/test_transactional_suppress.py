"""Reject reasons that mean "never again" carry the suppression for the host."""

import pytest

from mailwright_mailchimp.transactional import refusal


@pytest.mark.parametrize(
    ("reason", "suppress"),
    [("hard-bounce", "hard_bounce"), ("spam", "complaint"), ("unsub", "unsubscribed")],
)
def test_a_final_reject_reason_asks_for_suppression(reason: str, suppress: str) -> None:
    error = refusal({"status": "rejected", "reject_reason": reason})
    assert error.suppress == suppress
    assert error.code == f"reject:{reason}"


def test_a_soft_reject_does_not_suppress() -> None:
    assert refusal({"status": "rejected", "reject_reason": "soft-bounce"}).suppress is None
