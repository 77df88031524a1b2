"""Hook specifications: everything a Mailwright plugin can implement.

A plugin is a module (or object) whose functions carry `@mailwright.plugins.hookimpl` and
are named after the hooks below; it arrives through the entry-point group `mailwright`
(see `mailwright.plugins`). A hook implementation may accept any subset of the
parameters of its specification, so hooks can gain parameters without breaking plugins.

Unless a hook says otherwise, every plugin's implementation is called and the results are
collected in a list (later-registered plugins first), exceptions propagate to the caller,
and `None` results are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mailwright.common.v1.event_pb2 import Event
    from mailwright.connectors import ConnectorRegistry, OutboundMessage, SendOutcome
    from mailwright.extensions import (
        ScorerRegistry,
        SegmentFunction,
        SendVeto,
        TemplateExtensions,
    )

hookspec = pluggy.HookspecMarker("mailwright")


# -------------------------------------------------------------------------------------
# Registration hooks: called once per process, as each plugin is registered
# -------------------------------------------------------------------------------------


@hookspec(historic=True)
def mailwright_register_connectors(registry: ConnectorRegistry) -> None:
    """Register the plugin's connectors.

    Call ``registry.register(Connector(...))`` once per connector; a connector names its
    configuration model and gives one factory per capability it has (source, webhook,
    audience sync, email provider). Register only: open no connection and read no
    configuration here; that happens when a service opens the connector by name.

    :param registry: The process's connector registry. A name already taken raises
        ``DuplicateConnector``, and the whole plugin is then reported as failed.

    Return value: ignored.

    Called while the plugin is being registered, in every process that loads plugins.
    This hook is historic: a plugin registered after loading (in a test, say) is called
    at once with the same registry.
    """


@hookspec(historic=True)
def mailwright_register_scorers(registry: ScorerRegistry) -> None:
    """Register the plugin's predictive scorers.

    Call ``registry.register(scorer)`` once per scorer (an object implementing
    ``mailwright.extensions.Scorer``: a name, the computed traits it writes, and
    ``score(features)``). Scores are written back to profiles as computed traits that
    segments and templates use like any other trait.

    :param registry: The process's scorer registry.

    Return value: ignored.

    Called while the plugin is being registered; historic, like
    :func:`mailwright_register_connectors`.
    """


# -------------------------------------------------------------------------------------
# Ingest hooks: an event on its way to the bus
# -------------------------------------------------------------------------------------


@hookspec
def mailwright_enrich_event(event: Event) -> None:
    """Add to an accepted event before it is published.

    Modify ``event`` in place: fill ``context`` (a geo lookup from ``context.ip``, say),
    add ``properties`` or ``traits``. Do not change ``workspace``, ``message_id`` or
    ``type``, which ingest has already validated and deduplicated on.

    :param event: The event, validated and normalised, with ``workspace``,
        ``message_id`` and ``received_at`` set.

    Return value: ignored.

    Called by ingest for every accepted event (from the API, the HTTP edge, webhooks and
    sources), in the request's path: keep it fast and free of blocking I/O. An exception
    propagates to ingest, which reports the event as failed and does not publish it.
    """


# -------------------------------------------------------------------------------------
# Render hooks: building the template sandbox
# -------------------------------------------------------------------------------------


@hookspec
def mailwright_template_filters() -> TemplateExtensions | None:
    """Add filters and globals to the template sandbox.

    Return value: a ``TemplateExtensions`` with ``filters`` (name → callable) and
    ``globals`` (name → value), or ``None`` to add nothing. A name that collides with a
    built-in or with another plugin's stops render from starting, naming both.

    Called by the render service once per process, when it builds its template
    environment (after plugins load). Filters run inside the sandbox on every render:
    they must be pure, fast, and safe with any input a template can give them.
    """


# -------------------------------------------------------------------------------------
# Segment hooks: building the rule language
# -------------------------------------------------------------------------------------


@hookspec
def mailwright_segment_functions() -> Sequence[SegmentFunction] | None:
    """Add functions to the segment rule language.

    Return value: the plugin's ``SegmentFunction``s (name, parameter and return types, a
    pure Python function, optionally a SQL builder), or ``None``. A name taken by a
    built-in or another plugin stops the segment service from starting, naming both.

    Called by the segment service once per process, when it builds its rule language, and
    by any tool that parses rules (the CLI, tests).
    """


# -------------------------------------------------------------------------------------
# Delivery hooks: a rendered message on its way to the provider
# -------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def mailwright_before_send(message: OutboundMessage) -> SendVeto | None:
    """Inspect a rendered message and veto it if it must not go.

    :param message: The message as it will be handed to the email provider.

    Return value: a ``SendVeto`` with a reason to stop the send (delivery records it
    as vetoed with that reason, sends nothing, and does not retry), or ``None`` to let it
    go. ``firstresult``: the first veto wins and later implementations are not called.

    Called by delivery for every send, after rendering and suppression, before taking
    a token from the provider's rate limit. Do not modify the message.
    """


@hookspec
def mailwright_after_send(message: OutboundMessage, outcome: SendOutcome) -> None:
    """Observe a send's outcome.

    :param message: The message handed to the email provider.
    :param outcome: The provider message id, or the ``ProviderError`` that stopped it.

    Return value: ignored.

    Called by delivery once per provider attempt, after the outcome is recorded (so an
    exception here changes nothing about the send; delivery logs it). For metrics,
    audits, mirrors; never log the addresses or the body.
    """
