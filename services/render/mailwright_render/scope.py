"""The render scope: one recipient's budget and locale, reachable from sandboxed code.

Every render runs inside `render_scope(...)`. The scope lives in a context variable, not
in the template's context, so no template can see, call or reset it; the sandbox's loop
guard, call hook, output check and the locale filters all read it. Rendering outside a
scope is refused rather than run without limits.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Protocol

from markupsafe import Markup

from mailwright_render.errors import RenderLimitExceeded

_CHECK_CLOCK_EVERY = 256
# Expression output of all parts together (subject, HTML, text, captures) may reach
# this many times the output limit of one part.
_EMIT_FACTOR = 4


@dataclass(frozen=True)
class RenderLimits:
    """What one recipient's render may spend.

    `max_operations` counts loop iterations and calls together; `max_output_chars`
    bounds every part's output and every intermediate string; `max_range` bounds one
    `range()`; `max_seconds` is wall-clock time for the whole message.
    """

    max_seconds: float = 2.0
    max_operations: int = 200_000
    max_output_chars: int = 2_000_000
    max_range: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_seconds", "max_operations", "max_output_chars", "max_range"):
            if getattr(self, name) <= 0:
                raise ValueError(f"RenderLimits.{name} must be positive")


class RuntimeHooks(Protocol):
    """What compiled templates call back into for one recipient (see `render.py`)."""

    def merge_tag(self, index: int, html: bool) -> object: ...

    def merge_condition(self, index: int) -> bool: ...

    def link(self, index: int, html: bool) -> str: ...

    def click(self, index: int, rendered: str, html: bool) -> str: ...

    def track(self, index: int, value: object) -> str: ...

    def block_choice(self, index: int) -> int: ...

    def open_pixel(self) -> Markup: ...

    def preheader_html(self) -> Markup: ...


class RenderScope:
    """Counters and per-recipient settings for one render; see the module docstring."""

    __slots__ = (
        "deadline",
        "emitted",
        "hooks",
        "limits",
        "locale",
        "now",
        "operations",
        "timezone",
    )

    def __init__(
        self,
        limits: RenderLimits,
        *,
        locale: str,
        timezone: tzinfo,
        now: datetime,
        hooks: RuntimeHooks | None = None,
    ) -> None:
        self.limits = limits
        self.locale = locale
        self.timezone = timezone
        self.now = now
        self.hooks = hooks
        self.operations = 0
        self.emitted = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def tick(self, count: int = 1) -> None:
        """Spend operations; check the clock every few hundred."""
        before = self.operations
        self.operations = before + count
        if self.operations > self.limits.max_operations:
            raise RenderLimitExceeded(
                "operations",
                f"template used more than {self.limits.max_operations} loop iterations and calls",
            )
        if (before // _CHECK_CLOCK_EVERY) != (self.operations // _CHECK_CLOCK_EVERY):
            self.check_clock()

    def check_clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded(
                "time", f"template took longer than {self.limits.max_seconds:g} s to render"
            )

    def emit(self, size: int) -> None:
        """Count expression output, wherever it goes; all of it is bounded together."""
        self.emitted += size
        if self.emitted > _EMIT_FACTOR * self.limits.max_output_chars:
            raise RenderLimitExceeded(
                "output",
                f"template produced more than {_EMIT_FACTOR * self.limits.max_output_chars}"
                " characters of expression output",
            )

    def check_size(self, size: int, what: str = "a value") -> None:
        if size > self.limits.max_output_chars:
            raise RenderLimitExceeded(
                "output",
                f"{what} would be longer than {self.limits.max_output_chars} characters",
            )


_SCOPE: contextvars.ContextVar[RenderScope] = contextvars.ContextVar("mailwright_render_scope")
_get_scope = _SCOPE.get


def current_scope() -> RenderScope:
    """The scope of the render in progress; a RuntimeError outside one."""
    try:
        return _SCOPE.get()
    except LookupError:
        raise RuntimeError("templates render only inside render_scope()") from None


def current_hooks() -> RuntimeHooks:
    """The runtime of the message in progress (every platform callback asks for it)."""
    scope = _get_scope(None)
    if scope is not None and scope.hooks is not None:
        return scope.hooks
    if scope is None:
        raise RuntimeError("templates render only inside render_scope()")
    raise RuntimeError("this render scope has no template runtime attached")


class render_scope:
    """`with render_scope(scope):` — sandboxed code in the block reads `scope`.

    A class rather than a generator-based context manager: it runs once per message on
    the delivery path.
    """

    __slots__ = ("_scope", "_token")

    def __init__(self, scope: RenderScope) -> None:
        self._scope = scope

    def __enter__(self) -> RenderScope:
        self._token = _SCOPE.set(self._scope)
        return self._scope

    def __exit__(self, *exc_info: object) -> None:
        _SCOPE.reset(self._token)
