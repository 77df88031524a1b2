"""The campaign state machine."""

from __future__ import annotations

import pytest

from mailwright.errors import FailedPrecondition
from mailwright_delivery.lifecycle import Command, is_final, transition
from mailwright_delivery.model import CampaignState as S


def test_a_draft_is_scheduled_then_starts_then_finishes() -> None:
    state = transition(S.DRAFT, Command.SCHEDULE)
    state = transition(state, Command.START)
    assert transition(state, Command.FINISH) is S.SENT


def test_pause_and_resume_take_effect_mid_send() -> None:
    assert transition(S.SENDING, Command.PAUSE) is S.PAUSED
    assert transition(S.PAUSED, Command.RESUME) is S.SENDING


def test_a_campaign_paused_before_it_started_resumes_to_scheduled() -> None:
    paused = transition(S.SCHEDULED, Command.PAUSE)
    assert transition(paused, Command.RESUME, started=False) is S.SCHEDULED


@pytest.mark.parametrize("state", [S.DRAFT, S.SCHEDULED, S.SENDING, S.PAUSED])
def test_every_unfinished_campaign_can_be_cancelled(state: S) -> None:
    assert transition(state, Command.CANCEL) is S.CANCELLED


@pytest.mark.parametrize("state", [S.SENT, S.CANCELLED])
@pytest.mark.parametrize("command", list(Command))
def test_final_states_refuse_every_command(state: S, command: Command) -> None:
    assert is_final(state)
    with pytest.raises(FailedPrecondition, match="final"):
        transition(state, command)


def test_a_sending_campaign_cannot_be_edited() -> None:
    with pytest.raises(FailedPrecondition, match="cannot update a campaign that is sending"):
        transition(S.SENDING, Command.UPDATE)
