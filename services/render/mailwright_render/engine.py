"""The four shared environments, and the functions compiled templates call back into.

There is one sandbox per (HTML or text, missing-variable policy); they hold no
per-render state, so every thread and every template version shares them. The
`__mw_*` functions are what merge tags, tracked links, content blocks, the open pixel
and the preheader compile to; they find the recipient's runtime through the render
scope. Authors cannot name them (see `checks.py`).
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import pass_context, pass_eval_context
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from markupsafe import Markup

from mailwright_render.filters import now, template_filters
from mailwright_render.sandbox import MailwrightSandbox, MissingPolicy
from mailwright_render.scope import current_hooks

RESERVED_PREFIX = "__mw"


@pass_eval_context
def _merge_tag(eval_ctx: EvalContext, index: int) -> object:
    return current_hooks().merge_tag(index, bool(eval_ctx.autoescape))


def _merge_condition(index: int) -> bool:
    return current_hooks().merge_condition(index)


@pass_eval_context
def _link(eval_ctx: EvalContext, index: int) -> str:
    return current_hooks().link(index, bool(eval_ctx.autoescape))


@pass_eval_context
def _click(eval_ctx: EvalContext, rendered: object, index: int) -> str:
    return current_hooks().click(index, str(rendered), bool(eval_ctx.autoescape))


def _track(index: int, value: object) -> str:
    return current_hooks().track(index, value)


def _block(index: int) -> int:
    return current_hooks().block_choice(index)


def _open_pixel() -> Markup:
    return current_hooks().open_pixel()


def _preheader() -> Markup:
    return current_hooks().preheader_html()


@pass_context
def personalization_token(context: Context, expression: str, default: object = "") -> object:
    """HubSpot's `personalization_token('contact.firstname', 'there')`."""
    namespace, _, name = str(expression).partition(".")
    if namespace != "contact" or not name:
        return default
    contact = context.resolve_or_missing("contact")
    try:
        value = contact[name]
    except (KeyError, TypeError):
        return default
    return default if value in (None, "") else value


FUNCTIONS: dict[str, Any] = {
    "now": now,
    "personalization_token": personalization_token,
}
# What compiled templates call back into; authors cannot name them.
CALLBACKS: dict[str, Any] = {
    "__mw_tag": _merge_tag,
    "__mw_if": _merge_condition,
    "__mw_link": _link,
    "__mw_track": _track,
    "__mw_block": _block,
    "__mw_open_pixel": _open_pixel,
    "__mw_preheader": _preheader,
}
INTERNAL_FILTERS: dict[str, Any] = {"__mw_click": _click}


@functools.cache
def environment(html: bool, missing: MissingPolicy) -> MailwrightSandbox:
    """The shared sandbox for HTML (autoescaped) or text parts under a missing policy."""
    return MailwrightSandbox(
        html=html,
        missing=missing,
        filters=template_filters(),
        internal_filters=INTERNAL_FILTERS,
        functions=FUNCTIONS,
        trusted=CALLBACKS,
    )


GLOBAL_NAMES = frozenset(
    {*FUNCTIONS, *CALLBACKS, "range", "dict", "cycler", "joiner", "namespace"}
    | {"true", "false", "none"}
)
