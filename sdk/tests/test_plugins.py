"""Plugin loading: entry points, restriction, failures reported, hooks called."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mailwright import plugins as plugins_module
from mailwright.connectors import Capability, Connector, ConnectorConfig, OutboundMessage
from mailwright.extensions import SendVeto, TemplateExtensions
from mailwright.plugins import (
    PluginLoadError,
    Plugins,
    get_plugins,
    hookimpl,
    load_plugins,
    names_from_environment,
)
from mailwright.testing.distributions import write_distribution

CONNECTOR_PLUGIN = """
from pydantic import BaseModel
from mailwright.connectors import Connector
from mailwright.plugins import hookimpl


class Config(BaseModel):
    pass


class Provider:
    def __init__(self, config):
        self.config = config


@hookimpl
def mailwright_register_connectors(registry):
    registry.register(Connector({name!r}, Config, email_provider=Provider))
"""


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Install a one-module plugin distribution; returns its entry-point name."""

    def install(source: str, *, name: str | None = None) -> str:
        entry = name or f"p{uuid.uuid4().hex[:10]}"
        module = f"mw_test_{entry.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        write_distribution(
            tmp_path,
            f"mailwright-test-{entry}",
            entry_points={"mailwright": {entry: module}},
            modules={module: source},
        )
        return entry

    monkeypatch.syspath_prepend(str(tmp_path))
    return install


def test_the_smtp_plugin_is_found_through_its_entry_point() -> None:
    loaded = load_plugins(["smtp"])

    [info] = loaded.info()
    assert (info.name, info.distribution, info.module) == (
        "smtp",
        "mailwright-smtp",
        "mailwright_smtp.plugin",
    )
    assert info.version
    assert [(c.name, c.capabilities) for c in info.connectors] == [
        ("smtp", (Capability.WEBHOOK, Capability.EMAIL_PROVIDER))
    ]
    assert info.hooks == ("mailwright_register_connectors",)
    assert loaded.connectors.owner_of("smtp") == "smtp"


def test_only_the_named_plugins_load() -> None:
    loaded = load_plugins(["smtp"])

    assert [info.name for info in loaded.info()] == ["smtp"]
    assert loaded.failures == ()


def test_plugins_can_be_named_by_distribution() -> None:
    loaded = load_plugins(["mailwright-smtp"])

    assert [info.name for info in loaded.info()] == ["smtp"]


def test_an_empty_restriction_loads_no_plugin() -> None:
    loaded = load_plugins([])

    assert loaded.info() == []
    assert len(loaded.connectors) == 0


def test_the_variable_is_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_PLUGINS", " smtp, files ,,")
    assert names_from_environment() == ["smtp", "files"]
    monkeypatch.setenv("MAILWRIGHT_PLUGINS", "")
    assert names_from_environment() == []
    monkeypatch.delenv("MAILWRIGHT_PLUGINS")
    assert names_from_environment() is None


def test_the_process_loads_each_selection_of_plugins_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plugins_module, "_process_plugins", {})
    monkeypatch.setenv("MAILWRIGHT_PLUGINS", "smtp")

    first = get_plugins()
    assert get_plugins() is first
    assert [info.name for info in first.info()] == ["smtp"]
    # another platform of the same process asking for other plugins gets them
    # (the first selection used to stick: a later platform found no 'smtp')
    monkeypatch.setenv("MAILWRIGHT_PLUGINS", "files,smtp")
    second = get_plugins()
    assert second is not first
    assert sorted(info.name for info in second.info()) == ["files", "smtp"]
    monkeypatch.setenv("MAILWRIGHT_PLUGINS", "smtp")
    assert get_plugins() is first


def test_a_restriction_naming_a_missing_plugin_is_reported() -> None:
    loaded = load_plugins(["smtp", "no-such-plugin"])

    [failure] = loaded.failures
    assert failure.name == "no-such-plugin"
    assert "not installed" in failure.reason
    assert [info.name for info in loaded.info()] == ["smtp"]


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(install) -> None:  # type: ignore[no-untyped-def]
    broken = install("import mailwright_no_such_dependency\n")

    loaded = load_plugins([broken, "smtp"])

    [failure] = loaded.failures
    assert failure.name == broken
    assert failure.distribution == f"mailwright-test-{broken}"
    assert "ModuleNotFoundError" in failure.reason
    assert "mailwright_no_such_dependency" in failure.reason
    assert "Traceback" in failure.details
    assert "smtp" in loaded.connectors


def test_a_plugin_raising_at_import_is_reported(install) -> None:  # type: ignore[no-untyped-def]
    broken = install("raise RuntimeError('bad configuration of the plugin')\n")

    loaded = load_plugins([broken])

    [failure] = loaded.failures
    assert failure.reason == "import failed: RuntimeError: bad configuration of the plugin"


def test_a_plugin_whose_registration_raises_leaves_nothing_behind(install) -> None:  # type: ignore[no-untyped-def]
    source = CONNECTOR_PLUGIN.format(name="half") + (
        "\n\n@hookimpl\ndef mailwright_register_scorers(registry):\n"
        "    raise ValueError('scorer model missing')\n"
    )
    broken = install(source)

    loaded = load_plugins([broken])

    [failure] = loaded.failures
    assert "registration failed" in failure.reason
    assert "scorer model missing" in failure.reason
    assert "half" not in loaded.connectors
    assert loaded.info() == []


def test_a_connector_name_taken_by_another_plugin_fails_the_second(install) -> None:  # type: ignore[no-untyped-def]
    copycat = install(CONNECTOR_PLUGIN.format(name="smtp"), name="zz-copycat")

    loaded = load_plugins(["smtp", copycat])

    [failure] = loaded.failures
    assert failure.name == copycat
    assert "'smtp' is already registered by plugin 'smtp'" in failure.reason
    assert loaded.connectors.owner_of("smtp") == "smtp"


def test_a_misspelt_hook_is_refused(install) -> None:  # type: ignore[no-untyped-def]
    broken = install(
        "from mailwright.plugins import hookimpl\n\n"
        "@hookimpl\ndef mailwright_register_connector(registry):\n    pass\n"
    )

    loaded = load_plugins([broken])

    [failure] = loaded.failures
    assert "unknown hook 'mailwright_register_connector'" in failure.reason


def test_a_hook_without_its_marker_is_refused(install) -> None:  # type: ignore[no-untyped-def]
    broken = install("def mailwright_register_connectors(registry):\n    pass\n")

    loaded = load_plugins([broken])

    [failure] = loaded.failures
    assert "lacks @hookimpl" in failure.reason


def test_a_hook_with_parameters_its_spec_lacks_is_refused() -> None:
    class Plugin:
        @hookimpl
        def mailwright_enrich_event(self, event: object, workspace: str) -> None:
            pass

    loaded = Plugins()
    with pytest.raises(PluginLoadError, match="workspace"):
        loaded.register(Plugin(), "bad-arguments")
    assert loaded.info() == []


class EchoConfig(ConnectorConfig):
    pass


class EchoPlugin:
    @hookimpl
    def mailwright_register_connectors(self, registry):  # type: ignore[no-untyped-def]
        registry.register(Connector("echo", EchoConfig, email_provider=lambda config: config))


def test_a_plugin_registered_after_loading_still_registers_its_connectors() -> None:
    loaded = load_plugins([])

    loaded.register(EchoPlugin(), "late")

    assert loaded.connectors.owner_of("echo") == "late"
    [info] = loaded.info()
    assert info.hooks == ("mailwright_register_connectors",)


def message() -> OutboundMessage:
    return OutboundMessage(
        send_id="s1",
        idempotency_key="c1:p1",
        from_address="shop@example.com",
        to_address="ada@example.org",
        subject="Hello",
        text="Hi",
    )


def test_the_first_veto_before_send_wins() -> None:
    calls: list[str] = []

    class Allow:
        @hookimpl
        def mailwright_before_send(self, message: OutboundMessage) -> None:
            calls.append("allow")

    class Deny:
        def __init__(self, reason: str) -> None:
            self.reason = reason

        @hookimpl
        def mailwright_before_send(self, message: OutboundMessage) -> SendVeto:
            calls.append(self.reason)
            return SendVeto(self.reason, code="blocked")

    loaded = load_plugins([])
    loaded.register(Deny("first registered"), "deny-1")
    loaded.register(Deny("last registered"), "deny-2")
    loaded.register(Allow(), "allow")

    veto = loaded.hook.mailwright_before_send(message=message())

    # pluggy calls the most recently registered first.
    assert veto == SendVeto("last registered", code="blocked")
    assert calls == ["allow", "last registered"]


def test_no_veto_lets_the_message_go() -> None:
    loaded = load_plugins([])

    assert loaded.hook.mailwright_before_send(message=message()) is None


def test_template_extensions_are_collected_from_every_plugin() -> None:
    class Shout:
        @hookimpl
        def mailwright_template_filters(self) -> TemplateExtensions:
            return TemplateExtensions(filters={"shout": str.upper})

    class Brand:
        @hookimpl
        def mailwright_template_filters(self) -> TemplateExtensions:
            return TemplateExtensions(globals={"brand": "Acme"})

    loaded = load_plugins([])
    loaded.register(Shout(), "shout")
    loaded.register(Brand(), "brand")

    results = loaded.hook.mailwright_template_filters()

    filters = {name for result in results for name in result.filters}
    global_names = {name for result in results for name in result.globals}
    assert (filters, global_names) == ({"shout"}, {"brand"})


class ChurnScorer:
    name = "churn"
    outputs = ("churn_risk",)

    def score(self, features: dict[str, float]) -> dict[str, float]:
        return {"churn_risk": min(1.0, features.get("days_inactive", 0) / 90)}


def test_scorers_are_registered_and_attributed_to_their_plugin() -> None:
    class Predictive:
        @hookimpl
        def mailwright_register_scorers(self, registry):  # type: ignore[no-untyped-def]
            registry.register(ChurnScorer())

    loaded = load_plugins([])
    loaded.register(Predictive(), "predictive")

    assert loaded.scorers.get("churn").score({"days_inactive": 45}) == {"churn_risk": 0.5}
    [info] = loaded.info()
    assert info.scorers == ("churn",)


def test_a_scorer_writing_a_malformed_trait_is_refused() -> None:
    class Bad(ChurnScorer):
        outputs = ("Churn Risk",)

    class Predictive:
        @hookimpl
        def mailwright_register_scorers(self, registry):  # type: ignore[no-untyped-def]
            registry.register(Bad())

    loaded = load_plugins([])
    with pytest.raises(PluginLoadError, match="'Churn Risk' is not a trait name"):
        loaded.register(Predictive(), "predictive")
    assert "churn" not in loaded.scorers
