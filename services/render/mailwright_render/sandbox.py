"""The Jinja2 sandbox every template runs in, and its render-time limits.

Built on `ImmutableSandboxedEnvironment` (no `_`-attributes, no mutation of lists and
dicts) and tightened for templates written by people we do not fully trust:

- attribute access to internals (`__class__`, `mro`, `__globals__`, …) raises at once;
  methods of strings, lists, dicts and dates are an allowlist, and `str.format`,
  `format_map` and printf-style `%` are refused (format strings reach attributes);
- `lipsum`, `include`, `import` and `extends` are gone; `range` is bounded;
- every loop iteration and every call spends the render scope's operation budget and
  checks its clock; strings, containers, captured blocks and output are bounded in size
  before they are built where they could grow without limit (`*`, `+`, `~`, `center`,
  `indent`, `replace`, `join`, …) and checked after everything else;
- no compile-time constant folding: nothing a template author writes runs at publish.

Missing variables follow a policy: render empty (and false), or raise.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any

from jinja2 import ChainableUndefined, Environment, StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg

from mailwright_render.guards import (
    bounded,
    bounded_concat,
    bounded_range,
    finalize,
    guard_filter,
    html_output,
    iterate,
    precheck_method,
    precheck_power,
    precheck_repeat,
    text_output,
)
from mailwright_render.scope import current_scope


class MissingPolicy(Enum):
    """What a variable missing from the context does: render empty, or fail the render."""

    EMPTY = "empty"
    ERROR = "error"


class _QuietUndefined(ChainableUndefined):
    """Missing values are empty and false, and so are their attributes."""

    __slots__ = ()


# --- what sandboxed code may touch ---------------------------------------------------

_DENIED_ATTRIBUTES = frozenset(
    {"mro", "format", "format_map", "func_globals", "func_code", "gi_frame", "gi_code",
     "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "f_globals", "f_locals",
     "f_builtins", "im_func", "im_self", "co_code"}
)  # fmt: skip

_STR_METHODS = frozenset(
    {"lower", "upper", "title", "capitalize", "casefold", "swapcase", "strip", "lstrip",
     "rstrip", "startswith", "endswith", "split", "rsplit", "splitlines", "partition",
     "rpartition", "find", "rfind", "index", "rindex", "count", "isalnum", "isalpha",
     "isdigit", "isdecimal", "isnumeric", "isspace", "islower", "isupper", "istitle",
     "removeprefix", "removesuffix", "replace", "join", "striptags", "unescape"}
)  # fmt: skip
_ALLOWED_METHODS: tuple[tuple[type | tuple[type, ...], frozenset[str]], ...] = (
    (str, _STR_METHODS),
    ((list, tuple), frozenset({"index", "count"})),
    (dict, frozenset({"get", "keys", "values", "items"})),
    ((set, frozenset), frozenset({"union", "intersection", "difference", "issubset",
                                  "issuperset", "isdisjoint"})),
    ((datetime, date, time), frozenset({"isoformat", "strftime", "weekday", "isoweekday",
                                        "date", "time", "timestamp"})),
    ((int, float, Decimal, bytes, complex), frozenset()),
)  # fmt: skip


def _allowed_method(obj: object, attr: str) -> bool | None:
    for kinds, allowed in _ALLOWED_METHODS:
        if isinstance(obj, kinds):
            return attr in allowed
    return None


# --- code generation -----------------------------------------------------------------


class _GuardedCodeGenerator(CodeGenerator):
    # Every `{{ … }}` is `escape(environment.finalize(value))` (HTML) or
    # `str(environment.finalize(value))` (text) in Jinja's code; here it is one call
    # that does both, with a short way for the common case, a plain string.
    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile or finalize.src != "environment.finalize(":
            super()._output_child_pre(node, frame, finalize)
        elif frame.eval_ctx.autoescape:
            self.write("environment.mw_html_output(")
        else:
            self.write("environment.mw_text_output(")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile or finalize.src != "environment.finalize(":
            super()._output_child_post(node, frame, finalize)
        else:
            self.write(")")

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        # The platform's own callbacks (`__mw_link(3)`, `__mw_track(0, item.url)`, …:
        # what the compiler writes for links, merge tags, blocks) are called directly,
        # with the evaluation context when they take it, not through the sandbox's
        # `call`: they are on every recipient's path, once per link or tag. Authors
        # cannot name them (a reserved name is refused at publish), so nothing else
        # takes this way; they cost no operations (each runs once per place in the
        # template it is written, and every loop around it already counts).
        callee = node.node
        plain = not (forward_caller or node.kwargs or node.dyn_args or node.dyn_kwargs)
        if (
            plain
            and isinstance(callee, nodes.EnvironmentAttribute)
            and callee.name == "mw_iterate"
            and len(node.args) == 1
        ):
            # The loop guard that visit_For puts around every loop's iterable.
            self.write("environment.mw_iterate(")
            self.visit(node.args[0], frame)
            self.write(")")
            return
        imported: dict[str, bool] = getattr(self.environment, "mw_imported", {})
        if plain and isinstance(callee, nodes.ImportedName) and callee.importname in imported:
            # A callback the environment imported into the template's module (see
            # `MailwrightSandbox._generate`): a call of a module global.
            wants_eval_context = imported[callee.importname]
            self.visit(callee, frame)
            self.write("(")
        else:
            name = callee.name if isinstance(callee, nodes.Name) and callee.ctx == "load" else ""
            callbacks: dict[str, bool] = getattr(self.environment, "mw_callbacks", {})
            known = callbacks.get(name)
            if known is None or not plain:
                super().visit_Call(node, frame, forward_caller=forward_caller)
                return
            wants_eval_context = known
            self.write(f"environment.globals[{name!r}](")
        if wants_eval_context:
            self.write("context.eval_ctx, ")
        for argument in node.args:
            self.visit(argument, frame)
            self.write(", ")
        self.write(")")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # Every iteration of every loop spends the budget: the iterable is wrapped in
        # environment.mw_iterate (Jinja forbids custom node types, so a Call node).
        iterable = node.iter
        guarded = (
            isinstance(iterable, nodes.Call)
            and isinstance(iterable.node, nodes.EnvironmentAttribute)
            and iterable.node.name == "mw_iterate"
        )
        if not guarded:
            lineno = iterable.lineno
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("mw_iterate", lineno=lineno),
                [iterable],
                [],
                None,
                None,
                lineno=lineno,
            )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        self.write(f"environment.mw_bounded({join}((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write(")))")

    def _bounded_literal(
        self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame
    ) -> None:
        if getattr(node, "ctx", "load") != "load":
            visit(node, frame)
            return
        self.write("environment.mw_bounded(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._bounded_literal(super().visit_List, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        self._bounded_literal(super().visit_Tuple, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._bounded_literal(super().visit_Dict, node, frame)


# --- the environment -----------------------------------------------------------------


def _importable(func: Callable[..., Any]) -> bool:
    """Whether `func` is reachable as `module.name` (a module-level function)."""
    module = sys.modules.get(getattr(func, "__module__", "") or "")
    name = getattr(func, "__name__", "")
    return module is not None and getattr(module, name, None) is func


class RenderContext(Context):
    """Jinja's template context, built without a per-call comprehension for an empty
    block table: one is made for every part of every recipient's message."""

    def __init__(
        self,
        environment: Environment,
        parent: dict[str, Any],
        name: str | None,
        blocks: dict[str, Callable[[Context], Iterator[str]]],
        globals: MutableMapping[str, Any] | None = None,
    ) -> None:
        self.parent = parent
        self.vars = {}
        self.environment = environment
        self.eval_ctx = EvalContext(environment, name)
        self.exported_vars = set()
        self.name = name
        self.globals_keys = set() if globals is None else set(globals)
        self.blocks = {key: [block] for key, block in blocks.items()} if blocks else {}


class MailwrightSandbox(ImmutableSandboxedEnvironment):
    """The sandboxed environment; one instance per (HTML or text, missing policy)."""

    code_generator_class = _GuardedCodeGenerator
    context_class = RenderContext
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    # Called by the generated code of every template (see _GuardedCodeGenerator).
    mw_iterate = staticmethod(iterate)
    mw_bounded = staticmethod(bounded)
    mw_html_output = staticmethod(html_output)
    mw_text_output = staticmethod(text_output)

    def __init__(
        self,
        *,
        html: bool,
        missing: MissingPolicy,
        filters: Mapping[str, Callable[..., Any]],
        internal_filters: Mapping[str, Callable[..., Any]] | None = None,
        trusted: Mapping[str, Callable[..., Any]] | None = None,
        tests: Mapping[str, Callable[..., Any]] | None = None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        super().__init__(
            autoescape=html,
            undefined=StrictUndefined if missing is MissingPolicy.ERROR else _QuietUndefined,
            optimized=False,
            extensions=["jinja2.ext.loopcontrols"],
            finalize=finalize,
            auto_reload=False,
            cache_size=0,
        )
        self.missing = missing
        self.concat = bounded_concat  # type: ignore[method-assign]
        for name in ("lipsum",):
            self.globals.pop(name, None)
        self.globals["range"] = bounded_range
        self.globals.update(functions or {})
        self.globals.update(trusted or {})
        # The platform's own callbacks skip the generic call path (they are on every
        # recipient's hot path); whether each wants the evaluation context is known.
        self._trusted: dict[Callable[..., Any], bool] = {
            func: getattr(func, "jinja_pass_arg", None) is _PassArg.eval_context
            for func in (trusted or {}).values()
        }
        # By name, for the code generator, which calls them directly (see visit_Call).
        self.mw_callbacks: dict[str, bool] = {
            name: self._trusted[func] for name, func in (trusted or {}).items()
        }
        # Where each callback is imported from into a compiled template (see _generate).
        self._import_names: dict[str, str] = {
            name: f"{func.__module__}.{func.__name__}"
            for name, func in (trusted or {}).items()
            if _importable(func)
        }
        self.mw_imported: dict[str, bool] = {
            self._import_names[name]: wants
            for name, wants in self.mw_callbacks.items()
            if name in self._import_names
        }
        self.filters = {name: guard_filter(name, func) for name, func in filters.items()}
        # The platform's own filters (tracked links) are trusted and stay unwrapped.
        self.filters.update(internal_filters or {})
        if tests is not None:
            self.tests = dict(tests)

    # Compilation --------------------------------------------------------------------

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        # A plain call of a platform callback (`__mw_track(0, item.url)`) becomes a call
        # of the function imported into the template's module: no lookup of the name in
        # the render's context (Jinja resolves every name a template mentions, at the
        # top and again in each loop iteration that mentions it) and none in the
        # globals. Only names in `trusted` are rewritten; authors cannot write them.
        for call in source.find_all(nodes.Call):
            callee = call.node
            if (
                isinstance(callee, nodes.Name)
                and callee.ctx == "load"
                and callee.name in self._import_names
                and not (call.kwargs or call.dyn_args or call.dyn_kwargs)
            ):
                call.node = nodes.ImportedName(
                    self._import_names[callee.name], lineno=callee.lineno
                )
        return super()._generate(source, name, filename, defer_init)

    # Attribute and item access ------------------------------------------------------

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr in _DENIED_ATTRIBUTES or not super().is_safe_attribute(obj, attr, value):
            return False
        if callable(value):
            allowed = _allowed_method(obj, attr)
            if allowed is not None:
                return allowed
        return True

    def wrap_str_format(self, value: Any) -> None:
        # Never hand out a (sandboxed) str.format: is_safe_attribute refuses it instead.
        return None

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(
            f"access to attribute {attribute!r} of a {type(obj).__name__!r} value is not"
            " allowed in templates"
        )

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data first: a trait called "items" or "values" is the trait, not the method.
        if type(obj) is dict or (isinstance(obj, Mapping) and not isinstance(obj, Namespace)):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    # Calls and operators ------------------------------------------------------------

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        current_scope().tick()
        wants_eval_context = (
            __self._trusted.get(__obj) if type(__obj) is types.FunctionType else None
        )
        if wants_eval_context is not None:
            # Callbacks take positional arguments only; Jinja's bookkeeping keywords
            # (`_loop_vars`, `_block_vars`) are for macros and are dropped here.
            if wants_eval_context:
                return __obj(__context.eval_ctx, *args)
            return __obj(*args)
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        if isinstance(__obj, types.BuiltinMethodType | types.MethodType):
            precheck_method(__obj, args)
        if isinstance(__obj, LoopContext) and args:
            args = (iterate(args[0]), *args[1:])
        return bounded(__context.call(__obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("printf-style '%' formatting is not allowed; use filters")
        scope = current_scope()
        if operator == "*":
            precheck_repeat(left, right, scope)
        elif operator == "+" and isinstance(left, str | list | tuple):
            if isinstance(right, str | list | tuple):
                scope.check_size(len(left) + len(right), "a concatenation")
        elif operator == "**":
            precheck_power(left, right)
        return bounded(self.binop_table[operator](left, right))
