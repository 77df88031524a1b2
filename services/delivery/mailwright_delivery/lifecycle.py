"""The campaign lifecycle: which command moves a campaign from which state to which.

    draft ──schedule──► scheduled ──start──► sending ──finish──► sent
      │                    │  ▲                │  ▲
      │                    │  └──unschedule    pause  resume
      │                    │                   ▼  │
      └──cancel──► cancelled ◄──cancel──── paused ┘

Scheduling "now" goes straight to sending. Pause, resume and cancel act mid-send: the
worker checks the campaign's sends before each hand-over to the provider, so nothing is
handed over after the command commits (a batch already in the provider's hands finishes).
"""

from __future__ import annotations

from enum import StrEnum

from mailwright.errors import FailedPrecondition
from mailwright_delivery.model import CampaignState


class Command(StrEnum):
    SCHEDULE = "schedule"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    FINISH = "finish"
    UPDATE = "update"


_S = CampaignState

_TRANSITIONS: dict[tuple[CampaignState, Command], CampaignState] = {
    (_S.DRAFT, Command.SCHEDULE): _S.SCHEDULED,
    (_S.DRAFT, Command.UPDATE): _S.DRAFT,
    (_S.DRAFT, Command.CANCEL): _S.CANCELLED,
    (_S.SCHEDULED, Command.UPDATE): _S.SCHEDULED,
    (_S.SCHEDULED, Command.SCHEDULE): _S.SCHEDULED,
    (_S.SCHEDULED, Command.START): _S.SENDING,
    (_S.SCHEDULED, Command.PAUSE): _S.PAUSED,
    (_S.SCHEDULED, Command.CANCEL): _S.CANCELLED,
    (_S.SENDING, Command.PAUSE): _S.PAUSED,
    (_S.SENDING, Command.CANCEL): _S.CANCELLED,
    (_S.SENDING, Command.FINISH): _S.SENT,
    (_S.PAUSED, Command.RESUME): _S.SENDING,
    (_S.PAUSED, Command.CANCEL): _S.CANCELLED,
}

# A paused campaign that had not started yet resumes to scheduled.
_RESUME_UNSTARTED = _S.SCHEDULED


def transition(state: CampaignState, command: Command, *, started: bool = True) -> CampaignState:
    """The state after `command`, or FailedPrecondition saying why it is not allowed."""
    if state is _S.PAUSED and command is Command.RESUME and not started:
        return _RESUME_UNSTARTED
    target = _TRANSITIONS.get((state, command))
    if target is None:
        allowed = sorted(c.value for (s, c) in _TRANSITIONS if s is state)
        hint = f"; allowed: {', '.join(allowed)}" if allowed else " (it is final)"
        raise FailedPrecondition(f"cannot {command.value} a campaign that is {state.value}{hint}")
    return target


def allowed(state: CampaignState, command: Command) -> bool:
    return (state, command) in _TRANSITIONS or (state is _S.PAUSED and command is Command.RESUME)


def is_final(state: CampaignState) -> bool:
    return state in (_S.SENT, _S.CANCELLED)
