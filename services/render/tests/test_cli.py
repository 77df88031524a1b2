"""`mailwright render`: template files in three shapes, any part to stdout, no server."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailwright.cli import cli
from mailwright_render import TemplateFileError, TemplateKind, load_template_file

YAML = """\
name: welcome
kind: marketing
subject:
  - key: a
    template: "Hello *|FNAME|*"
  - key: b
    weight: 2
    template: "{{ first_name|default('Friend') }}, new picks"
preheader: Picked for you
mjml_file: body.mjml
blocks:
  hero:
    default: "<mj-text>Welcome!</mj-text>"
    variants:
      - key: vip
        when: {segment: vip}
        content: "<mj-text>VIP picks for {{ first_name|default('you') }}</mj-text>"
"""
MJML = """<mjml><mj-body><mj-section><mj-column>
  <mj-text>Hi *|FNAME|*</mj-text>
  {% content_block "hero" %}
  <mj-text><a href="*|UNSUB|*">Unsubscribe</a> *|LIST:ADDRESSLINE|*</mj-text>
</mj-column></mj-section></mj-body></mjml>"""
CONTEXT = {
    "profile": {"id": "p1", "email": "ann@example.com", "segments": ["vip"], "locale": "en_GB"},
    "traits": {"first_name": "Ann"},
    "sender": {"name": "Shop", "email": "news@shop.example", "postal_address": "1 Main St\nTown"},
}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "welcome.yaml").write_text(YAML)
    (tmp_path / "body.mjml").write_text(MJML)
    (tmp_path / "context.json").write_text(json.dumps(CONTEXT))
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["render", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_root_cli_discovers_the_render_command() -> None:
    result = CliRunner().invoke(cli, ["render", "--help"])
    assert result.exit_code == 0
    assert "--context" in result.stdout


def test_renders_the_text_part_of_a_yaml_template(files: Path) -> None:
    code, out, _ = invoke(
        str(files / "welcome.yaml"), "--context", str(files / "context.json"), "--part", "text"
    )
    assert code == 0
    assert out == (
        "Hi Ann\n\nVIP picks for Ann\n"
        "Unsubscribe (https://unsubscribe.invalid/preview) 1 Main St, Town\n"
    )


def test_renders_a_chosen_subject_variant(files: Path) -> None:
    args = (str(files / "welcome.yaml"), "--context", str(files / "context.json"))
    assert invoke(*args, "--part", "subject")[1] == "Hello Ann\n"
    assert invoke(*args, "--part", "subject", "--subject-variant", "b")[1] == "Ann, new picks\n"


def test_renders_html_compiled_from_mjml(files: Path) -> None:
    code, out, _ = invoke(str(files / "welcome.yaml"), "--context", str(files / "context.json"))
    assert code == 0
    assert out.lower().startswith("<!doctype html>")
    assert "VIP picks for Ann" in out


def test_renders_a_complete_mime_message(files: Path) -> None:
    code, out, _ = invoke(
        str(files / "welcome.yaml"), "--context", str(files / "context.json"), "--part", "mime"
    )
    assert code == 0
    message = email.message_from_string(out, policy=policy.default)
    assert message["Subject"] == "Hello Ann"
    assert message["To"] == "ann@example.com"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]


def test_a_body_with_front_matter(tmp_path: Path) -> None:
    page = tmp_path / "receipt.html"
    page.write_text(
        "---\nsubject: Receipt {{ order_id }}\nkind: transactional\n---\n"
        "<p>Total {{ total|money('EUR') }}</p>\n"
    )
    context = tmp_path / "c.json"
    context.write_text(json.dumps({"traits": {"order_id": "A1", "total": "9.5"}}))
    assert invoke(str(page), "--context", str(context), "--part", "subject")[1] == "Receipt A1\n"
    assert invoke(str(page), "--context", str(context), "--part", "text")[1] == "Total €9.50\n"


def test_a_bare_html_file_takes_its_subject_from_the_title(tmp_path: Path) -> None:
    page = tmp_path / "note.html"
    page.write_text(
        "<html><head><title>Note &amp; more</title></head>"
        "<body><p>Hi {{ name|default('you') }}</p></body></html>"
    )
    source = load_template_file(page)
    assert (source.subject[0].source, source.kind) == ("Note & more", TemplateKind.TRANSACTIONAL)
    assert invoke(str(page), "--part", "text")[1] == "Hi you\n"


def test_compile_errors_are_printed_with_positions(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<p>\n  *|IF:VIP|* {{ x }</p>")
    code, _, err = invoke(str(page))
    assert code == 1
    assert "html:2:" in err
    assert "does not compile" in err


def test_warnings_go_to_stderr_not_stdout(tmp_path: Path) -> None:
    page = tmp_path / "w.html"
    page.write_text("<p>{{ first_name }}</p>")
    code, out, err = invoke(str(page), "--part", "text")
    assert (code, out) == (0, "\n")
    assert "missing-fallback" in err


def test_render_errors_exit_non_zero(tmp_path: Path) -> None:
    page = tmp_path / "e.html"
    page.write_text("<p>{{ 1 / zero|default(0) }}</p>")
    code, _, err = invoke(str(page))
    assert code == 1
    assert "ZeroDivisionError" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("subject: [", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ("subject: x\nhtml: <p/>\ncolour: red", "unknown template fields: colour"),
        ("subject: x\nhtml: <p/>\nkind: spam", "kind: expected marketing or transactional"),
        ("subject: x\nhtml_file: nope.html", "html_file: nope.html is not a file"),
        ("subject: [{key: a}]\nhtml: <p/>", "subject[0]: expected"),
        (
            "subject: x\nhtml: <p/>\nblocks: {b: {variants: [{content: x, when: {foo: 1}}]}}",
            "when: expected",
        ),
    ],
)
def test_bad_template_files_name_the_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(content)
    with pytest.raises(TemplateFileError, match=message.replace("[", r"\[")):
        load_template_file(path)


def test_a_bad_context_file_is_a_usage_error(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>")
    context = tmp_path / "c.json"
    context.write_text("[1, 2]")
    code, _, err = invoke(str(page), "--context", str(context))
    assert code == 2
    assert "expected a JSON object" in err
