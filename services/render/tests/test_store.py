"""The render store on SQLite and PostgreSQL: templates, versions, publishing, merge fields."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mailwright.errors import AlreadyExists, FailedPrecondition, NotFound
from mailwright.runtime.db import Database
from mailwright_render import (
    BlockVariant,
    ContentBlock,
    Issue,
    MergeField,
    RuleCondition,
    SegmentCondition,
    Severity,
    TemplateKind,
    TemplateSource,
    Variant,
)
from mailwright_render.records import (
    Authored,
    Publication,
    TemplateMeta,
    VersionState,
)
from mailwright_render.store import MIGRATIONS, TemplateStore

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WARNING = Issue(Severity.WARNING, "missing-fallback", "'x' has no fallback", "html", 3, 7)


@pytest.fixture
def store(database_url: str) -> Iterator[TemplateStore]:
    db = Database(database_url, service="render", migrations=MIGRATIONS)
    db.migrate()
    yield TemplateStore(db)
    db.close()


def _authored(body: str = "<p>Hi {{ first_name }}</p>", **fields: object) -> Authored:
    source = TemplateSource(
        name="welcome",
        subject=(Variant("a", "Hello *|FNAME|*"), Variant("b", "Hi", 2.0)),
        html=body,
        kind=TemplateKind.TRANSACTIONAL,
        **fields,  # type: ignore[arg-type]
    )
    return Authored(source, "1 Main Street")


def _publication(digest: str = "d" * 64) -> Publication:
    return Publication('{"compiled": true}', digest, (WARNING,), 1234)


def test_a_new_template_starts_with_draft_version_one(store: TemplateStore) -> None:
    template, version = store.create("acme", "welcome", TemplateMeta("Welcome"), _authored(), NOW)
    assert (template.latest_version, template.published_version) == (1, 0)
    assert template.display_name == "Welcome"
    assert template.created_at == NOW
    assert version.version == 1
    assert version.state is VersionState.DRAFT


def test_content_is_stored_as_authored(store: TemplateStore) -> None:
    blocks = (
        ContentBlock(
            "hero",
            (
                BlockVariant("vip", "<p>VIP</p>", SegmentCondition(("vip", "gold"), "all")),
                BlockVariant("gold", "<p>Gold</p>", RuleCondition('trait plan = "gold"')),
            ),
            "<p>Hello</p>",
        ),
    )
    authored = _authored('{% content_block "hero" %}', blocks=blocks, text="Hi")
    store.create("acme", "welcome", TemplateMeta(), authored, NOW)
    stored = store.version("acme", "welcome", 1)
    assert stored is not None
    assert stored.authored == authored


def test_a_taken_template_id_is_refused(store: TemplateStore) -> None:
    store.create("acme", "welcome", TemplateMeta(), _authored(), NOW)
    with pytest.raises(AlreadyExists):
        store.create("acme", "welcome", TemplateMeta(), _authored(), NOW)


def test_the_same_id_in_another_workspace_is_another_template(store: TemplateStore) -> None:
    store.create("acme", "welcome", TemplateMeta(), _authored("<p>acme</p>"), NOW)
    store.create("globex", "welcome", TemplateMeta(), _authored("<p>globex</p>"), NOW)
    acme = store.version("acme", "welcome", 1)
    assert acme is not None
    assert acme.authored is not None
    assert acme.authored.source.html == "<p>acme</p>"
    assert [t.workspace for t in store.templates("globex", None, 10)] == ["globex"]


def test_each_update_adds_the_next_draft_and_keeps_the_earlier(store: TemplateStore) -> None:
    store.create("acme", "welcome", TemplateMeta(), _authored("<p>one</p>"), NOW)
    later = NOW + timedelta(hours=1)
    template, version = store.add_version(
        "acme", "welcome", _authored("<p>two</p>"), TemplateMeta(description="v2"), later
    )
    assert (template.latest_version, version.version) == (2, 2)
    assert template.description == "v2"
    assert template.updated_at == later
    first = store.version("acme", "welcome", 1)
    assert first is not None
    assert first.authored is not None
    assert first.authored.source.html == "<p>one</p>"


def test_an_update_without_content_changes_only_the_metadata(store: TemplateStore) -> None:
    store.create("acme", "welcome", TemplateMeta("Old"), _authored(), NOW)
    template, version = store.add_version("acme", "welcome", None, TemplateMeta("New"), NOW)
    assert (template.display_name, template.latest_version, version.version) == ("New", 1, 1)


def test_updating_a_missing_template_is_not_found(store: TemplateStore) -> None:
    with pytest.raises(NotFound):
        store.add_version("acme", "nope", _authored(), TemplateMeta(), NOW)


def test_publishing_stores_the_artefact_and_points_the_template_at_it(
    store: TemplateStore,
) -> None:
    store.create("acme", "welcome", TemplateMeta(), _authored(), NOW)
    template, version = store.publish("acme", "welcome", 1, _publication(), NOW)
    assert template.published_version == 1
    assert version.state is VersionState.PUBLISHED
    assert version.published_at == NOW
    assert version.warnings == (WARNING,)
    assert version.html_size == 1234
    artefact = store.artefact("acme", "welcome", 1)
    assert (artefact.artefact, artefact.digest) == ('{"compiled": true}', "d" * 64)
    assert artefact.postal_address == "1 Main Street"


def test_a_published_version_is_never_published_over(store: TemplateStore) -> None:
    store.create("acme", "welcome", TemplateMeta(), _authored(), NOW)
    store.publish("acme", "welcome", 1, _publication("a" * 64), NOW)
    store.publish("acme", "welcome", 1, _publication("b" * 64), NOW + timedelta(days=1))
    version = store.version("acme", "welcome", 1)
    assert version is not None
    assert version.digest == "a" * 64
    assert version.published_at == NOW


def test_publishing_an_older_version_again_rolls_back(store: TemplateStore) -> None:
    store.create("acme", "welcome", TemplateMeta(), _authored(), NOW)
    store.publish("acme", "welcome", 1, _publication("a" * 64), NOW)
    store.add_version("acme", "welcome", _authored("<p>two</p>"), TemplateMeta(), NOW)
    store.publish("acme", "welcome", 2, _publication("b" * 64), NOW)
    template, version = store.publish("acme", "welcome", 1, None, NOW)
    assert template.published_version == 1
    assert version.digest == "a" * 64


def test_a_draft_cannot_become_current_without_being_compiled(store: TemplateStore) -> None:
    store.create("acme", "welcome", TemplateMeta(), _authored(), NOW)
    with pytest.raises(FailedPrecondition):
        store.publish("acme", "welcome", 1, None, NOW)


def test_a_draft_has_no_artefact_to_render(store: TemplateStore) -> None:
    store.create("acme", "welcome", TemplateMeta(), _authored(), NOW)
    with pytest.raises(FailedPrecondition, match="draft"):
        store.artefact("acme", "welcome", 1)
    with pytest.raises(NotFound):
        store.artefact("acme", "welcome", 9)


def test_templates_are_listed_by_id_in_pages(store: TemplateStore) -> None:
    for name in ("c", "a", "b", "d"):
        store.create("acme", name, TemplateMeta(), _authored(), NOW)
    first = store.templates("acme", None, 3)
    rest = store.templates("acme", first[-1].template_id, 3)
    assert [t.template_id for t in first + rest] == ["a", "b", "c", "d"]


def test_versions_are_listed_newest_first_without_content(store: TemplateStore) -> None:
    store.create("acme", "welcome", TemplateMeta(), _authored(), NOW)
    for _ in range(3):
        store.add_version("acme", "welcome", _authored(), TemplateMeta(), NOW)
    first = store.versions("acme", "welcome", None, 2)
    rest = store.versions("acme", "welcome", first[-1].version, 2)
    assert [v.version for v in first + rest] == [4, 3, 2, 1]
    assert all(v.authored is None for v in first + rest)


def test_a_merge_field_map_is_absent_until_set_then_replaced_whole(
    store: TemplateStore,
) -> None:
    assert store.merge_fields("acme") is None
    store.set_merge_fields("acme", {"FNAME": MergeField("given_name", "friend")}, NOW)
    store.set_merge_fields("acme", {"CITY": MergeField("city")}, NOW)
    assert store.merge_fields("acme") == {"CITY": MergeField("city")}
    assert store.merge_fields("globex") is None
