"""Size and budget guards that sandboxed code runs through.

Everything that could make a render build something huge is checked here, before it is
built where growth has no bound (repetition, powers, padding, joins, replacements) and
after it is built everywhere else (every filter result, call result, literal and
captured block). Every check reads the render scope, so the limits are per render.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2.utils import Namespace
from markupsafe import Markup, escape

try:  # markupsafe's C escaping of a plain string, as `escape` itself uses it
    from markupsafe import _escape_inner as _escape_text  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another markupsafe

    def _escape_text(text: str, /) -> str:
        return str(escape(text))


from mailwright_render.errors import RenderLimitExceeded
from mailwright_render.scope import RenderScope, current_scope

_POWER_LIMIT_BITS = 16_384
_INT_PRODUCT_LIMIT_BITS = 65_536
_MAX_NESTING = 200
_COUNTED_LENGTH = 256
# Strings this short are within any sensible output limit and are not checked.
_SHORT = 4096
# `str.__new__(Markup, text)`: a Markup of text already safe, without Markup's `__new__`.
_new_str: Callable[[type[Markup], str], Markup] = str.__new__


# Type tuples for isinstance (a union written in place, `list | tuple`, is built anew
# at every call).
_SEQUENCES = (list, tuple)
_COLLECTIONS = (list, tuple, set, frozenset)
_CONTAINERS = (list, tuple, dict, set, frozenset, Namespace)


def marked(safe: str) -> Markup:
    """`Markup(safe)` for text escaped already or safe by construction, without the
    checks of Markup's own constructor (for strings built once per message)."""
    return _new_str(Markup, safe)


def escape_text(text: str) -> str:
    """The HTML-escaped text of a plain string, as a plain string (C escaping)."""
    return _escape_text(text)


def expanded_size(value: object, scope: RenderScope) -> int:
    """Characters-or-items a value would take written out, counting shared parts each time.

    Shared parts are measured once (a memo by identity), so a structure that refers to
    itself exponentially costs a walk linear in its distinct parts; the walk raises as
    soon as the total passes the output limit.
    """
    return _measure(value, {}, scope, 0)


def _measure(item: object, memo: dict[int, int], scope: RenderScope, depth: int) -> int:
    if isinstance(item, str):
        return len(item)
    if isinstance(item, dict):
        children: Iterable[object] = (*item.keys(), *item.values())
    elif isinstance(item, _COLLECTIONS):
        children = item
    elif isinstance(item, Namespace):
        children = object.__getattribute__(item, "_Namespace__attrs").values()
    else:
        return 1
    known = memo.get(id(item))
    if known is not None:
        return known
    if depth > _MAX_NESTING:
        raise RenderLimitExceeded("output", f"a value is nested more than {_MAX_NESTING} deep")
    limit = scope.limits.max_output_chars
    total = 1
    for child in children:
        total += _measure(child, memo, scope, depth + 1)
        if total > limit:
            scope.check_size(total, "a value")
    memo[id(item)] = total
    return total


def bounded(value: Any) -> Any:
    """`value`, once it is known to stay within the output limit when written out."""
    if isinstance(value, str):
        if len(value) > _SHORT:
            current_scope().check_size(len(value), "a string")
    elif isinstance(value, _CONTAINERS):
        expanded_size(value, current_scope())
    return value


def finalize(value: Any) -> Any:
    """Applied to every `{{ … }}` output: None prints empty, and output is counted.

    The count covers output captured by `{% set %}` blocks, macros and filters too,
    which never reaches the top-level stream check. Short strings are not counted: with
    the operation budget they cannot add up to much, and they are most of all output.
    """
    kind = type(value)
    if kind is str or kind is Markup:
        if len(value) >= _COUNTED_LENGTH:
            current_scope().emit(len(value))
        return value
    if value is None:
        return ""
    if isinstance(value, _CONTAINERS):
        scope = current_scope()
        scope.emit(expanded_size(value, scope))
    return value


def html_output(value: Any) -> str:
    """`escape(finalize(value))`: what every `{{ … }}` of an HTML part writes.

    Output goes into the part's stream (or a captured block, which Jinja marks safe as
    a whole), never into another expression: a plain string is written escaped, as a
    plain string (the characters `escape` would return, without copying them into a
    Markup)."""
    kind = type(value)
    if kind is str:
        if len(value) >= _COUNTED_LENGTH:
            current_scope().emit(len(value))
        return _escape_text(value)
    if kind is Markup:
        safe: Markup = value
        if len(safe) >= _COUNTED_LENGTH:
            current_scope().emit(len(safe))
        return safe
    if kind is int:  # digits and a sign: nothing to escape, nothing to count
        return int.__repr__(value)
    return escape(finalize(value))


def text_output(value: Any) -> str:
    """`str(finalize(value))`: what every `{{ … }}` of a text part writes."""
    if type(value) is str:
        text: str = value
        if len(text) >= _COUNTED_LENGTH:
            current_scope().emit(len(text))
        return text
    return str(finalize(value))


def bounded_concat(parts: Iterable[str]) -> str:
    chunks = parts if isinstance(parts, list) else list(parts)
    current_scope().check_size(sum(map(len, chunks)), "a captured block")
    return "".join(chunks)


def bounded_range(*args: int) -> range:
    scope = current_scope()
    result = range(*args)
    if len(result) > scope.limits.max_range:
        raise RenderLimitExceeded(
            "range", f"range() of {len(result)} items exceeds {scope.limits.max_range}"
        )
    return result


# A loop over a list or tuple this short is charged its length up front and runs over
# the sequence itself (no generator between Jinja and the items); a `{% break %}` then
# leaves at most this many operations paid and unused.
_PREPAID_ITEMS = 64


def iterate(iterable: Iterable[Any]) -> Iterable[Any]:
    """What a loop runs over: `iterable`, spending one operation per item."""
    if isinstance(iterable, _SEQUENCES) and len(iterable) <= _PREPAID_ITEMS:
        current_scope().tick(len(iterable))
        return iterable
    return _ticking(iterable)


def _ticking(iterable: Iterable[Any]) -> Iterator[Any]:
    tick = current_scope().tick
    for item in iterable:
        tick()
        yield item


def precheck_repeat(left: Any, right: Any, scope: RenderScope) -> None:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(times, int):
            scope.check_size(expanded_size(sequence, scope) * max(times, 0), "a repetition")
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > _INT_PRODUCT_LIMIT_BITS
    ):
        raise RenderLimitExceeded("output", "an integer product would be too large")


def precheck_power(base: Any, exponent: Any) -> None:
    if isinstance(base, numbers.Integral) and isinstance(exponent, numbers.Integral):
        size = abs(int(base)).bit_length()
        if size > 1 and int(exponent) * size > _POWER_LIMIT_BITS:
            raise RenderLimitExceeded("output", "a power would be too large")
    elif isinstance(exponent, numbers.Real) and abs(float(exponent)) > _POWER_LIMIT_BITS:
        raise RenderLimitExceeded("output", "a power would be too large")


def precheck_method(method: Any, args: tuple[Any, ...]) -> None:
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str) or not args:
        return
    scope = current_scope()
    name = method.__name__
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str):
        occurrences = owner.count(args[0])
        growth = len(str(args[1])) - len(args[0])
        scope.check_size(len(owner) + occurrences * max(growth, 0), "a replacement")
    elif name == "join":
        items = args[0] if isinstance(args[0], list | tuple) else list(args[0])
        size = expanded_size(items, scope) + len(owner) * max(len(items) - 1, 0)
        scope.check_size(size, "a join")


Args = tuple[Any, ...]
Precheck = Callable[[Args, Mapping[str, Any]], Args]


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Pre-check the filters that could build something huge; size-check every result."""
    precheck = _FILTER_PRECHECKS.get(name)
    # Filters marked pass_environment / pass_context / pass_eval_context receive one
    # more positional argument in front of the value.
    offset = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if precheck is not None:
            args = args[:offset] + precheck(args[offset:], kwargs)
        result = func(*args, **kwargs)
        kind = type(result)
        if (kind is str or kind is Markup) and len(result) <= _SHORT:
            return result
        return bounded(result)

    return guarded


def _argument(args: Args, kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else None


def _check_width(args: Args, kwargs: Mapping[str, Any]) -> Args:
    text = str(args[0]) if args else ""
    width = _argument(args, kwargs, 1, "width")
    lines = text.count("\n") + 1
    if isinstance(width, int):
        current_scope().check_size(len(text) + lines * max(width, 0), "a padded text")
    elif isinstance(width, str):
        current_scope().check_size(len(text) + lines * len(width), "an indented text")
    return args


def _check_wordwrap(args: Args, kwargs: Mapping[str, Any]) -> Args:
    text = str(args[0]) if args else ""
    width = _argument(args, kwargs, 1, "width") or 79
    wrapstring = _argument(args, kwargs, 3, "wrapstring") or "\n"
    breaks = len(text) // max(int(width), 1) + 1
    current_scope().check_size(len(text) + breaks * len(str(wrapstring)), "a wrapped text")
    return args


def _check_replace(args: Args, kwargs: Mapping[str, Any]) -> Args:
    text = str(args[0]) if args else ""
    old = str(_argument(args, kwargs, 1, "old") or "")
    new = str(_argument(args, kwargs, 2, "new") or "")
    occurrences = text.count(old)
    current_scope().check_size(
        len(text) + occurrences * max(len(new) - len(old), 0), "a replacement"
    )
    return args


def _check_join(args: Args, kwargs: Mapping[str, Any]) -> Args:
    if not args:
        return args
    items = args[0]
    if not isinstance(items, list | tuple | str):
        # Materialise generators here, so their length is known before joining.
        items = list(iterate(items))
    separator = str(_argument(args, kwargs, 1, "d") or "")
    scope = current_scope()
    size = expanded_size(items, scope) + len(separator) * max(len(items) - 1, 0)
    scope.check_size(size, "a join")
    return (items, *args[1:])


def _check_count(position: int, name: str) -> Precheck:
    def check(args: Args, kwargs: Mapping[str, Any]) -> Args:
        count = _argument(args, kwargs, position, name)
        limit = current_scope().limits.max_range
        if isinstance(count, int) and count > limit:
            raise RenderLimitExceeded("range", f"{name} of {count} exceeds {limit}")
        return args

    return check


_FILTER_PRECHECKS: dict[str, Precheck] = {
    "center": _check_width,
    "indent": _check_width,
    "wordwrap": _check_wordwrap,
    "replace": _check_replace,
    "join": _check_join,
    "batch": _check_count(1, "linecount"),
    "slice": _check_count(1, "slices"),
}
