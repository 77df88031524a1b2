"""The two Mailchimp connectors' configurations, validated when a connector is opened.

- `mailchimp` (`MailchimpConfig`): the Marketing API — one audience (list) kept in step
  with segments, and that audience's webhooks. Secrets: `api_key` (`<key>-<dc>`, the data
  centre after the dash) and `webhook_secret` (the token put in the webhook URL).
- `mailchimp-transactional` (`TransactionalConfig`): Mailchimp Transactional (Mandrill) as
  an email provider, and its signed delivery webhooks. Secrets: `api_key` and
  `webhook_key` (the key Mandrill shows for the webhook, which signs its requests).

Set fields as `MAILWRIGHT_CONNECTOR_MAILCHIMP_<FIELD>` /
`MAILWRIGHT_CONNECTOR_MAILCHIMP_TRANSACTIONAL_<FIELD>`, as files in
`$MAILWRIGHT_SECRETS_DIR/<connector>/<field>` (a Kubernetes Secret), or under
`connectors: {mailchimp: …}` in the configuration file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from mailwright.connectors import ConfigProblem, ConnectorConfig, ConnectorConfigError, env_variable
from mailwright.runtime.settings import Duration

MARKETING = "mailchimp"
TRANSACTIONAL = "mailchimp-transactional"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

API_KEY = re.compile(r"^[A-Za-z0-9]{8,64}-(?P<dc>[a-z]{2,4}[0-9]{1,3})$")
LIST_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
MERGE_TAG = re.compile(r"^[A-Z][A-Z0-9_]{0,9}$")
TRAIT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,99}$")
MAX_CONCURRENT_CONNECTIONS = 10
"""Mailchimp allows each user ten simultaneous connections to the Marketing API."""

DEFAULT_MERGE_FIELDS: Mapping[str, str] = {
    "first_name": "FNAME",
    "last_name": "LNAME",
    "phone": "PHONE",
}


def https_or_local(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"must be https ({field} carries credentials)")
    return value.rstrip("/")


def data_center(api_key: str) -> str:
    """The data centre of a Marketing API key: `…-us21` → `us21`."""
    match = API_KEY.match(api_key)
    if match is None:
        raise ValueError("not a Mailchimp API key (<key>-<data centre>, e.g. …-us21)")
    return match.group("dc")


def _missing(connector: str, field: str, needed_by: str) -> ConnectorConfigError:
    variable = env_variable(connector, field)
    problem = ConfigProblem(field, "not set", f"required by the {needed_by}; set {variable}")
    return ConnectorConfigError(connector, [problem])


def _secret(connector: str, value: SecretStr | None, field: str, needed_by: str) -> str:
    if value is None or not value.get_secret_value():
        raise _missing(connector, field, needed_by)
    return value.get_secret_value()


class MailchimpConfig(ConnectorConfig):
    """One Mailchimp audience: credentials, merge fields, how segments become tags."""

    api_key: SecretStr | None = None
    """A Marketing API key, `<key>-<dc>`: the part after the dash names the data centre
    (`us21` → `https://us21.api.mailchimp.com/3.0`)."""
    list_id: str | None = None
    """The audience (list) id whose members and tags mirror segments."""
    base_url: str | None = None
    """The API root; derived from the key's data centre when unset."""
    status_if_new: Literal["subscribed", "pending", "unsubscribed", "transactional"] = "subscribed"
    """The status a person added by a sync gets when Mailchimp does not know them yet
    (`pending` sends Mailchimp's double opt-in email). Existing members keep theirs."""
    merge_fields: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MERGE_FIELDS))
    """Profile trait → merge tag of the audience (`first_name` → `FNAME`): written by the
    sync, read back from webhooks."""
    tag_prefix: str = Field(default="", max_length=40)
    """Prefix of the tag each segment becomes (`<prefix><segment name>`)."""
    batch_threshold: int = Field(default=50, ge=1, le=10_000)
    """Changes with more members than this go through a batch operation (`POST /batches`)
    rather than one request per member."""
    batch_operations: int = Field(default=500, ge=1, le=1000)
    """The most operations put in one batch request."""
    batch_poll_interval: Duration = timedelta(seconds=2)
    batch_timeout: Duration = timedelta(minutes=30)
    max_connections: int = Field(default=MAX_CONCURRENT_CONNECTIONS, ge=1, le=10)
    """Requests in flight at once; Mailchimp allows ten per user, shared by every app."""
    webhook_secret: SecretStr | None = None
    """The token in the audience webhook's URL (`…/webhooks/mailchimp/<ws>?secret=<token>`):
    Mailchimp signs nothing, so the secret in the URL is what authenticates it."""
    webhook_secret_parameter: str = Field(default="secret", pattern=r"^[a-z_]{1,32}$")
    timeout: Duration = timedelta(seconds=30)
    retries: int = Field(default=6, ge=1, le=20)
    max_retry_wait: Duration = timedelta(minutes=2)

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            data_center(value.get_secret_value())
        return value

    @field_validator("list_id")
    @classmethod
    def _list(cls, value: str | None) -> str | None:
        if value is not None and not LIST_ID.match(value):
            raise ValueError("not a Mailchimp list id (letters and digits)")
        return value

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        return None if value is None else https_or_local(value, "the API key")

    @field_validator("merge_fields")
    @classmethod
    def _merge_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for trait, tag in value.items():
            if not TRAIT_NAME.match(trait):
                raise ValueError(f"trait {trait!r} is not a trait name")
            if not MERGE_TAG.match(tag) or tag == "EMAIL":
                raise ValueError(f"{tag!r} is not a merge tag (A-Z, 0-9, _; at most 10)")
        if len(set(value.values())) != len(value):
            raise ValueError("two traits map to the same merge tag")
        return value

    def api_root(self, needed_by: str) -> str:
        if self.base_url is not None:
            return self.base_url
        key = self.key(needed_by)
        return f"https://{data_center(key)}.api.mailchimp.com/3.0"

    def key(self, needed_by: str) -> str:
        return _secret(MARKETING, self.api_key, "api_key", needed_by)

    def list(self, needed_by: str) -> str:
        if self.list_id is None:
            raise _missing(MARKETING, "list_id", needed_by)
        return self.list_id

    def secret(self, needed_by: str) -> str:
        return _secret(MARKETING, self.webhook_secret, "webhook_secret", needed_by)

    @property
    def traits_by_tag(self) -> dict[str, str]:
        return {tag: trait for trait, tag in self.merge_fields.items()}


class TransactionalConfig(ConnectorConfig):
    """One Mailchimp Transactional (Mandrill) account: sending and delivery webhooks."""

    api_key: SecretStr | None = None
    """A Transactional API key (sent in each request's JSON body, as Mandrill asks)."""
    webhook_key: SecretStr | None = None
    """The webhook's key, shown by Mandrill for each webhook: it signs the requests."""
    webhook_url: str | None = None
    """The URL exactly as registered with Mandrill (the signature covers it), when
    Mailwright sits behind a proxy that changes scheme, host or path."""
    base_url: str = "https://mandrillapp.com/api/1.0"
    subaccount: str | None = Field(default=None, max_length=255)
    send_raw: bool = True
    """Send the MIME render built (`/messages/send-raw`) when there is one; otherwise the
    fields (`/messages/send`)."""
    track_opens: bool | None = None
    track_clicks: bool | None = None
    rate_per_second: float = Field(default=20.0, gt=0, le=1000)
    concurrency: int = Field(default=4, ge=1, le=50)
    max_event_age: Duration = timedelta(hours=24)
    """Webhook events older (or later) than this are refused as `STALE`: their `ts` is
    inside the signed body, so a captured request cannot be replayed after that."""
    timeout: Duration = timedelta(seconds=30)
    retries: int = Field(default=5, ge=1, le=20)
    max_retry_wait: Duration = timedelta(minutes=2)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return https_or_local(value, "the API key")

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        return value

    def key(self, needed_by: str) -> str:
        return _secret(TRANSACTIONAL, self.api_key, "api_key", needed_by)

    def signing_key(self, needed_by: str) -> str:
        return _secret(TRANSACTIONAL, self.webhook_key, "webhook_key", needed_by)
