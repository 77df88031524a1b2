"""Connector configuration: one pydantic model per connector, validated when it is opened.

Each field of a connector's model is looked up, most important first, in:

1. the environment variable `MAILWRIGHT_CONNECTOR_<NAME>_<FIELD>` (upper case, hyphens as
   underscores: `MAILWRIGHT_CONNECTOR_MAILCHIMP_TRANSACTIONAL_API_KEY`);
2. a file `<secrets dir>/<name>/<field>`, where the secrets directory is given by
   `MAILWRIGHT_SECRETS_DIR` — the layout of a Kubernetes Secret mounted per connector
   (`mountPath: /etc/mailwright/secrets/shopify`, one key per field);
3. the connector's section of the configuration file (`connectors: {shopify: {...}}`);
4. the model's default.

Values from the environment and from files are strings; pydantic converts them, and a
field whose type is a list, a mapping or a model takes JSON. Secrets are `SecretStr`
fields: they print as `**********`, and no error message or log line carries a value.
"""

from __future__ import annotations

import json
import logging
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from mailwright.connectors.errors import ConnectorError

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

ENV_PREFIX = "MAILWRIGHT_CONNECTOR_"
SECRETS_DIR_VARIABLE = "MAILWRIGHT_SECRETS_DIR"
MAX_SECRET_FILE_BYTES = 64 * 1024


class ConnectorConfig(BaseModel):
    """Base for connector configuration models: unknown fields refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def field_error(model: type[BaseModel], field: str, message: str) -> ValidationError:
    """An error about `field` for a model validator to raise, so the problem names it.

    A `model_validator` that checks fields together would otherwise report the whole
    model; `raise field_error(SmtpConfig, "password", "required with username")`.
    """
    detail = InitErrorDetails(
        type=PydanticCustomError("connector_config", message), loc=(field,), input=None
    )
    return ValidationError.from_exception_data(model.__name__, [detail])


@dataclass(frozen=True)
class ConfigProblem:
    """One field that is wrong: its path, where its value came from, what is wrong."""

    field: str
    origin: str
    message: str

    def __str__(self) -> str:
        return f"{self.field} ({self.origin}): {self.message}"


class ConnectorConfigError(ConnectorError, ValueError):
    """A connector's configuration is invalid; every problem names its field."""

    def __init__(self, connector: str, problems: list[ConfigProblem]) -> None:
        self.connector = connector
        self.problems = tuple(problems)
        self.field = problems[0].field if problems else ""
        listed = "; ".join(str(problem) for problem in problems)
        super().__init__(f"connector {connector!r} is misconfigured: {listed}")


def env_variable(connector: str, field: str) -> str:
    """The environment variable that sets `field` of `connector`."""
    return (ENV_PREFIX + connector + "_" + field).upper().replace("-", "_")


def secrets_dir_from(environ: Mapping[str, str]) -> Path | None:
    value = environ.get(SECRETS_DIR_VARIABLE, "").strip()
    return Path(value) if value else None


def load_config(
    connector: str,
    model: type[ModelT],
    values: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    secrets_dir: Path | None = None,
) -> ModelT:
    """Build and validate `connector`'s configuration (see the module docstring).

    `values` is the connector's section of the configuration file; `environ` defaults to
    `os.environ`, and `secrets_dir` to `$MAILWRIGHT_SECRETS_DIR`. Raises
    `ConnectorConfigError` listing every bad field with the variable or file to fix.
    """
    environ = os.environ if environ is None else environ
    if secrets_dir is None:
        secrets_dir = secrets_dir_from(environ)
    raw: dict[str, Any] = dict(values or {})
    origins = {key: "configuration" for key in raw}
    for name, info in model.model_fields.items():
        key = info.alias or name
        variable = env_variable(connector, name)
        found = _from_environment(environ, variable)
        origin = variable
        if found is None and secrets_dir is not None:
            found = _from_secret_file(connector, secrets_dir / connector / name)
            origin = f"secret file {secrets_dir / connector / name}"
        if found is None:
            continue
        raw[key] = _decode(found, info.annotation, connector, name, origin)
        origins[key] = origin
    try:
        config = model.model_validate(raw)
    except ValidationError as error:
        problems = [_problem(connector, model, item, origins) for item in error.errors()]
        raise ConnectorConfigError(connector, problems) from None
    log.debug(
        "connector %s configured; fields from outside the file: %s",
        connector,
        sorted(key for key, origin in origins.items() if origin != "configuration"),
    )
    return config


def _from_environment(environ: Mapping[str, str], variable: str) -> str | None:
    return environ.get(variable)


def _from_secret_file(connector: str, path: Path) -> str | None:
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size > MAX_SECRET_FILE_BYTES:
        problem = ConfigProblem(
            path.name, f"secret file {path}", f"file is {size} bytes, more than 64 KiB"
        )
        raise ConnectorConfigError(connector, [problem])
    # Secrets created with `echo` or an editor end with a newline that is not part of them.
    return path.read_text(encoding="utf-8").rstrip("\r\n")


def _decode(value: str, annotation: Any, connector: str, field: str, origin: str) -> Any:
    if not _takes_json(annotation) or value.strip()[:1] not in ("[", "{"):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        problem = ConfigProblem(field, origin, f"not valid JSON ({error.msg} at {error.pos})")
        raise ConnectorConfigError(connector, [problem]) from None


def _takes_json(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_takes_json(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin is not None:
        return origin in (list, tuple, set, frozenset, dict) or (
            isinstance(origin, type) and issubclass(origin, Mapping)
        )
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _problem(
    connector: str, model: type[BaseModel], item: Any, origins: Mapping[str, str]
) -> ConfigProblem:
    location = [str(part) for part in item["loc"]]
    field = ".".join(location) or "(configuration)"
    top = location[0] if location else ""
    if item["type"] == "missing":
        return ConfigProblem(
            field,
            "not set",
            f"required; set {env_variable(connector, top)} or {top!r} in the configuration",
        )
    if item["type"] == "extra_forbidden":
        known = ", ".join(sorted(model.model_fields))
        return ConfigProblem(field, "configuration", f"unknown field (known: {known})")
    # pydantic's `msg` describes the expected value without echoing the input.
    return ConfigProblem(field, origins.get(top, "default"), str(item["msg"]))
