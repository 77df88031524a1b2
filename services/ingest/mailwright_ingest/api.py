"""gRPC servicer of the ingest service: protobuf in, domain calls, protobuf out.

Events go through the intake (`intake.py`); the taxonomy, the ingest policy and write keys
through the store, each mutation once per `request_id` (the request log). Domain errors
(`mailwright.errors`) become statuses in the gateway interceptor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from mailwright.common.v1 import event_pb2
from mailwright.errors import InvalidArgument, NotFound, Violations
from mailwright.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from mailwright.names import parse, parse_workspace
from mailwright.runtime.auth import ALL_WORKSPACES, current_principal
from mailwright.runtime.requests import RequestLog
from mailwright.runtime.rpc import Context
from mailwright_ingest import convert, paging
from mailwright_ingest.catalog import Catalog, hash_write_key
from mailwright_ingest.config import IngestSettings
from mailwright_ingest.intake import Intake, Status
from mailwright_ingest.policy import check_policy
from mailwright_ingest.store import IngestStore
from mailwright_ingest.taxonomy import check_unique, definition_id
from mailwright_ingest.write_keys import WriteKeyMinter, key_prefix

M = TypeVar("M", bound=Message)
T = TypeVar("T")

MAX_DISPLAY_NAME = 200


def _rate_key() -> str | None:
    """Whose rate a call takes: the calling token's (internal tokens are not limited)."""
    principal = current_principal.get()
    if principal is None or principal.workspace == ALL_WORKSPACES:
        return None
    return f"token:{principal.token_id or principal.subject}"


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(
        self,
        intake: Intake,
        store: IngestStore,
        catalog: Catalog,
        requests: RequestLog,
        minter: WriteKeyMinter,
        settings: IngestSettings,
    ) -> None:
        self.intake = intake
        self.store = store
        self.catalog = catalog
        self.requests = requests
        self.minter = minter
        self.settings = settings

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        return await self.store.db.run(fn, *args)

    # -- events -----------------------------------------------------------------------

    async def _single(
        self, parent: str, request: Message, kind: event_pb2.EventType.ValueType
    ) -> ingest_pb2.EventResult:
        workspace = parse_workspace(parent)
        if not request.HasField("event"):
            raise InvalidArgument.field("event", "is required")
        event: event_pb2.Event = getattr(request, "event")  # noqa: B009
        event.type = kind
        (outcome,) = await self.intake.ingest(
            workspace, [event], source="grpc", field=lambda _: "event", rate_key=_rate_key()
        )
        if outcome.status is Status.REJECTED:
            raise InvalidArgument(violations=outcome.violations)
        return convert.result(outcome)

    async def Track(
        self, request: ingest_pb2.TrackRequest, context: Context
    ) -> ingest_pb2.TrackResponse:
        result = await self._single(request.parent, request, event_pb2.EVENT_TYPE_TRACK)
        return ingest_pb2.TrackResponse(result=result)

    async def Identify(
        self, request: ingest_pb2.IdentifyRequest, context: Context
    ) -> ingest_pb2.IdentifyResponse:
        result = await self._single(request.parent, request, event_pb2.EVENT_TYPE_IDENTIFY)
        return ingest_pb2.IdentifyResponse(result=result)

    async def Page(
        self, request: ingest_pb2.PageRequest, context: Context
    ) -> ingest_pb2.PageResponse:
        result = await self._single(request.parent, request, event_pb2.EVENT_TYPE_PAGE)
        return ingest_pb2.PageResponse(result=result)

    async def Alias(
        self, request: ingest_pb2.AliasRequest, context: Context
    ) -> ingest_pb2.AliasResponse:
        result = await self._single(request.parent, request, event_pb2.EVENT_TYPE_ALIAS)
        return ingest_pb2.AliasResponse(result=result)

    async def IngestBatch(
        self, request: ingest_pb2.IngestBatchRequest, context: Context
    ) -> ingest_pb2.IngestBatchResponse:
        workspace = parse_workspace(request.parent)
        limit = self.settings.max_batch_events
        if len(request.events) > limit:
            raise InvalidArgument.field(
                "events", f"{len(request.events)} events; at most {limit} per batch"
            )
        size = request.ByteSize()
        if size > self.settings.max_batch_bytes:
            raise InvalidArgument.field(
                "events", f"{size} bytes; at most {self.settings.max_batch_bytes} per batch"
            )
        outcomes = await self.intake.ingest(
            workspace,
            request.events,
            source="grpc",
            field=lambda i: f"events[{i}]",
            rate_key=_rate_key(),
            backfill=request.backfill,
        )
        response = ingest_pb2.IngestBatchResponse(results=[convert.result(o) for o in outcomes])
        for outcome in outcomes:
            if outcome.status is Status.ACCEPTED:
                response.accepted_count += 1
            elif outcome.status is Status.DUPLICATE:
                response.duplicate_count += 1
            else:
                response.rejected_count += 1
        return response

    # -- taxonomy ---------------------------------------------------------------------

    async def ApplyTaxonomy(
        self, request: ingest_pb2.ApplyTaxonomyRequest, context: Context
    ) -> ingest_pb2.ApplyTaxonomyResponse:
        workspace = parse_workspace(request.parent)
        problems = Violations()
        specs = []
        positions = []
        for index, message in enumerate(request.definitions):
            checked = convert.definition_from_proto(message, f"definitions[{index}]")
            if isinstance(checked, list):
                problems.extend(checked)
            else:
                specs.append(checked)
                positions.append(index)
        problems.extend(check_unique(specs, "definitions", positions))
        problems.raise_if_any()
        await self.catalog.ensure(workspace)

        async def compute() -> ingest_pb2.ApplyTaxonomyResponse:
            applied = await self._db(
                self.store.apply_taxonomy, workspace, specs, request.prune, request.validate_only
            )
            self.catalog.invalidate(workspace)
            return ingest_pb2.ApplyTaxonomyResponse(
                definitions=[
                    convert.definition_to_proto(workspace, d) for d in applied.definitions
                ],
                created_count=applied.created,
                updated_count=applied.updated,
                deleted_count=applied.deleted,
            )

        if request.validate_only:
            return await compute()
        return await self.requests.run(
            workspace, "ApplyTaxonomy", request, ingest_pb2.ApplyTaxonomyResponse, compute
        )

    async def GetEventDefinition(
        self, request: ingest_pb2.GetEventDefinitionRequest, context: Context
    ) -> ingest_pb2.GetEventDefinitionResponse:
        name = parse(request.name, "name", "eventDefinitions")
        await self.catalog.ensure(name.workspace)
        found = await self._db(self.store.get_definition, name.workspace, name.id)
        if found is None:
            raise NotFound(f"{request.name} does not exist")
        return ingest_pb2.GetEventDefinitionResponse(
            definition=convert.definition_to_proto(name.workspace, found)
        )

    async def ListEventDefinitions(
        self, request: ingest_pb2.ListEventDefinitionsRequest, context: Context
    ) -> ingest_pb2.ListEventDefinitionsResponse:
        workspace = parse_workspace(request.parent)
        size = paging.page_size(request.page_size)
        after = paging.decode(request.page_token, request.tag)
        await self.catalog.ensure(workspace)
        found = await self._db(self.store.list_definitions, workspace, after, size + 1, request.tag)
        response = ingest_pb2.ListEventDefinitionsResponse(
            definitions=[convert.definition_to_proto(workspace, d) for d in found[:size]]
        )
        if len(found) > size:
            response.next_page_token = paging.encode(found[size - 1].id, request.tag)
        return response

    async def UpsertEventDefinition(
        self, request: ingest_pb2.UpsertEventDefinitionRequest, context: Context
    ) -> ingest_pb2.UpsertEventDefinitionResponse:
        workspace = parse_workspace(request.parent)
        if not request.HasField("definition"):
            raise InvalidArgument.field("definition", "is required")
        checked = convert.definition_from_proto(request.definition, "definition")
        if isinstance(checked, list):
            raise InvalidArgument(violations=checked)
        if request.definition.name:
            named = parse(request.definition.name, "definition.name", "eventDefinitions")
            if named.workspace != workspace or named.id != definition_id(checked.event):
                raise InvalidArgument.field(
                    "definition.name",
                    f"must be workspaces/{workspace}/eventDefinitions/"
                    f"{definition_id(checked.event)} for event {checked.event!r}",
                )
        await self.catalog.ensure(workspace)

        async def compute() -> ingest_pb2.UpsertEventDefinitionResponse:
            stored, _ = await self._db(self.store.upsert_definition, workspace, checked)
            self.catalog.invalidate(workspace)
            return ingest_pb2.UpsertEventDefinitionResponse(
                definition=convert.definition_to_proto(workspace, stored)
            )

        return await self.requests.run(
            workspace,
            "UpsertEventDefinition",
            request,
            ingest_pb2.UpsertEventDefinitionResponse,
            compute,
        )

    async def DeleteEventDefinition(
        self, request: ingest_pb2.DeleteEventDefinitionRequest, context: Context
    ) -> ingest_pb2.DeleteEventDefinitionResponse:
        name = parse(request.name, "name", "eventDefinitions")
        await self.catalog.ensure(name.workspace)

        async def compute() -> ingest_pb2.DeleteEventDefinitionResponse:
            if not await self._db(self.store.delete_definition, name.workspace, name.id):
                raise NotFound(f"{request.name} does not exist")
            self.catalog.invalidate(name.workspace)
            return ingest_pb2.DeleteEventDefinitionResponse()

        return await self.requests.run(
            name.workspace,
            "DeleteEventDefinition",
            request,
            ingest_pb2.DeleteEventDefinitionResponse,
            compute,
        )

    # -- ingest policy ----------------------------------------------------------------

    @staticmethod
    def _policy_workspace(name: str, field: str) -> str:
        head, _, tail = name.rpartition("/")
        if tail != "ingestPolicy":
            raise InvalidArgument.field(
                field, f"must look like workspaces/{{workspace}}/ingestPolicy, got {name!r}"
            )
        return parse_workspace(head, field)

    async def GetIngestPolicy(
        self, request: ingest_pb2.GetIngestPolicyRequest, context: Context
    ) -> ingest_pb2.GetIngestPolicyResponse:
        workspace = self._policy_workspace(request.name, "name")
        await self.catalog.ensure(workspace)
        policy = await self._db(self.store.get_policy, workspace)
        assert policy is not None
        return ingest_pb2.GetIngestPolicyResponse(policy=convert.policy_to_proto(workspace, policy))

    async def UpdateIngestPolicy(
        self, request: ingest_pb2.UpdateIngestPolicyRequest, context: Context
    ) -> ingest_pb2.UpdateIngestPolicyResponse:
        if not request.HasField("policy"):
            raise InvalidArgument.field("policy", "is required")
        workspace = self._policy_workspace(request.policy.name, "policy.name")
        await self.catalog.ensure(workspace)

        async def compute() -> ingest_pb2.UpdateIngestPolicyResponse:
            current = await self._db(self.store.get_policy, workspace)
            assert current is not None
            wanted = convert.policy_from_proto(request.policy, current)
            problems = check_policy(wanted)
            if problems:
                raise InvalidArgument(violations=problems)
            stored = await self._db(self.store.put_policy, workspace, wanted)
            self.catalog.invalidate(workspace)
            return ingest_pb2.UpdateIngestPolicyResponse(
                policy=convert.policy_to_proto(workspace, stored)
            )

        return await self.requests.run(
            workspace, "UpdateIngestPolicy", request, ingest_pb2.UpdateIngestPolicyResponse, compute
        )

    # -- write keys -------------------------------------------------------------------

    async def CreateWriteKey(
        self, request: ingest_pb2.CreateWriteKeyRequest, context: Context
    ) -> ingest_pb2.CreateWriteKeyResponse:
        workspace = parse_workspace(request.parent)
        display_name = request.display_name.strip() or "write key"
        if len(display_name) > MAX_DISPLAY_NAME:
            raise InvalidArgument.field("display_name", f"longer than {MAX_DISPLAY_NAME}")
        await self.catalog.ensure(workspace)

        async def compute() -> ingest_pb2.CreateWriteKeyResponse:
            key_id = self.minter.new_id()
            key = self.minter.key(workspace, key_id)
            stored = await self._db(
                self.store.create_write_key,
                workspace,
                key_id,
                display_name,
                hash_write_key(key),
                key_prefix(key),
            )
            # The secret stays out of the request log; it is derived again below.
            return ingest_pb2.CreateWriteKeyResponse(write_key=convert.write_key_to_proto(stored))

        response = await self.requests.run(
            workspace, "CreateWriteKey", request, ingest_pb2.CreateWriteKeyResponse, compute
        )
        key_id = parse(response.write_key.name, "name", "writeKeys").id
        response.write_key.key = self.minter.key(workspace, key_id)
        return response

    async def ListWriteKeys(
        self, request: ingest_pb2.ListWriteKeysRequest, context: Context
    ) -> ingest_pb2.ListWriteKeysResponse:
        workspace = parse_workspace(request.parent)
        size = paging.page_size(request.page_size)
        after = paging.decode(request.page_token)
        found = await self._db(self.store.list_write_keys, workspace, after, size + 1)
        response = ingest_pb2.ListWriteKeysResponse(
            write_keys=[convert.write_key_to_proto(k) for k in found[:size]]
        )
        if len(found) > size:
            response.next_page_token = paging.encode(found[size - 1].key_id)
        return response

    async def RevokeWriteKey(
        self, request: ingest_pb2.RevokeWriteKeyRequest, context: Context
    ) -> ingest_pb2.RevokeWriteKeyResponse:
        name = parse(request.name, "name", "writeKeys")

        async def compute() -> ingest_pb2.RevokeWriteKeyResponse:
            stored = await self._db(self.store.revoke_write_key, name.workspace, name.id)
            if stored is None:
                raise NotFound(f"{request.name} does not exist")
            self.catalog.forget_write_keys()
            return ingest_pb2.RevokeWriteKeyResponse(write_key=convert.write_key_to_proto(stored))

        return await self.requests.run(
            name.workspace, "RevokeWriteKey", request, ingest_pb2.RevokeWriteKeyResponse, compute
        )
