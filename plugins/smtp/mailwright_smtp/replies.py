"""SMTP replies mapped to the error kinds delivery acts on.

The basic code (RFC 5321 §4.2) says permanent (5xx) or temporary (4xx); the enhanced
status code when the server gives one (RFC 3463, `5.1.1`) says what failed — the mailbox,
the system, the policy. Where the reply came matters too: a 550 to MAIL FROM refuses our
sender, not the recipient's address.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

from mailwright.connectors import ErrorKind, ProviderError


class Phase(StrEnum):
    """The step of the SMTP transaction a reply answered."""

    CONNECT = "connect"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\S)")
_RATE_WORDS = re.compile(
    r"rate.?limit|too many (?:messages|connections|mails|emails)|throttl|slow down"
    r"|quota exceeded|exceeded .{0,20}quota|try again later",
    re.IGNORECASE,
)
_AUTH_CODES = frozenset({530, 534, 535, 538})
_SYNTAX_CODES = frozenset({500, 501, 502, 503, 504, 555})


def enhanced_status(text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 status code at the start of a reply's text, if any."""
    match = _ENHANCED.match(text)
    if match is None:
        return None
    klass, subject, detail = (int(part) for part in match.groups())
    return klass, subject, detail


def classify(code: int, text: str, phase: Phase) -> ErrorKind:
    """The error kind of a negative SMTP reply `code` with `text`, received at `phase`."""
    enhanced = enhanced_status(text)
    if code in (421, 451):
        return ErrorKind.RATE_LIMITED
    if code in _AUTH_CODES or (code >= 500 and enhanced is not None and enhanced[1:] == (7, 8)):
        return ErrorKind.AUTH
    if 400 <= code < 500:
        return _temporary(code, text, enhanced)
    if 500 <= code < 600:
        return _permanent(code, text, enhanced, phase)
    return ErrorKind.TRANSIENT


def _temporary(code: int, text: str, enhanced: tuple[int, int, int] | None) -> ErrorKind:
    if _RATE_WORDS.search(text) or (enhanced is not None and enhanced[1:] == (7, 28)):
        return ErrorKind.RATE_LIMITED
    if code in (450, 452) or (enhanced is not None and enhanced[1] in (1, 2)):
        return ErrorKind.SOFT_BOUNCE
    return ErrorKind.TRANSIENT


def _permanent(
    code: int, text: str, enhanced: tuple[int, int, int] | None, phase: Phase
) -> ErrorKind:
    if (enhanced is not None and enhanced[1:] == (4, 5)) or _RATE_WORDS.search(text):
        return ErrorKind.RATE_LIMITED  # 5.4.5: sending quota exceeded, for a day or so
    if code in _SYNTAX_CODES:
        return ErrorKind.INVALID
    if phase is Phase.MAIL:
        return ErrorKind.REJECTED  # our sender refused: no fault of the recipient's address
    if enhanced is not None:
        return _by_enhanced(enhanced, phase)
    if phase is Phase.RCPT and code in (550, 551, 553):
        return ErrorKind.HARD_BOUNCE
    if code == 552:
        return ErrorKind.SOFT_BOUNCE if phase is Phase.RCPT else ErrorKind.INVALID
    return ErrorKind.REJECTED


def _by_enhanced(enhanced: tuple[int, int, int], phase: Phase) -> ErrorKind:
    _, subject, detail = enhanced
    if subject == 1:  # addressing
        if detail in (7, 8):
            return ErrorKind.REJECTED  # bad sender address or sender's system
        return ErrorKind.HARD_BOUNCE
    if subject == 2:  # mailbox
        if detail == 2:
            return ErrorKind.SOFT_BOUNCE  # mailbox full
        if detail == 3:
            return ErrorKind.INVALID  # message longer than the mailbox takes
        return ErrorKind.HARD_BOUNCE
    if subject == 3:  # mail system
        return ErrorKind.INVALID if detail == 4 else ErrorKind.REJECTED
    if subject == 4:  # routing: no such domain, no route
        return ErrorKind.HARD_BOUNCE
    if subject in (5, 6):  # protocol, content conversion
        return ErrorKind.INVALID
    if subject == 7:  # security and policy
        return ErrorKind.REJECTED
    return ErrorKind.HARD_BOUNCE if phase is Phase.RCPT else ErrorKind.REJECTED


_REPLY_CODE = re.compile(r"^\s*([245])(\d\d)(?:[\s-]|$)")
# Kinds of a permanent status that still leave the address worth trying again.
_SOFT_KINDS = frozenset({ErrorKind.SOFT_BOUNCE, ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT})


def reported_bounce_type(status: tuple[int, int, int], diagnostic: str) -> str:
    """`hard` or `soft`: a failure a delivery status notification reports for a recipient.

    The remote server refused after our relay accepted the message, so the report is
    read as that server's reply at RCPT: the same table as a refusal during our own
    transaction (5.2.2 mailbox full is soft, 5.1.1 unknown user hard). `diagnostic` is the
    reply text after `smtp;` (`550 5.1.1 … user unknown`), when the report gives one.
    """
    klass = status[0]
    if klass != 5:
        return "soft"
    reply = _REPLY_CODE.match(diagnostic)
    code = int(reply.group(1) + reply.group(2)) if reply else 550
    if code // 100 != klass:
        code = 550  # a diagnostic that contradicts the status: the status decides
    text = _REPLY_CODE.sub("", diagnostic, count=1).strip()
    if enhanced_status(text) is not None:
        text = _ENHANCED.sub("", text, count=1).strip()
    # A status that gives only its class (`5.0.0`) says less than the basic reply code.
    detail = "" if status[1:] == (0, 0) else ".".join(map(str, status)) + " "
    kind = classify(code, detail + text, Phase.RCPT)
    return "soft" if kind in _SOFT_KINDS else "hard"


def reply_error(
    code: int, text: str, phase: Phase, *, rate_limited_wait: timedelta
) -> ProviderError:
    """A `ProviderError` for the reply, with `retry_after` when it is a rate limit."""
    kind = classify(code, text, phase)
    retry_after = rate_limited_wait if kind is ErrorKind.RATE_LIMITED else None
    enhanced = enhanced_status(text)
    provider_code = f"{code} {'.'.join(map(str, enhanced))}" if enhanced else str(code)
    return ProviderError(
        kind, f"{phase.value}: {code} {text}", retry_after=retry_after, code=provider_code
    )
