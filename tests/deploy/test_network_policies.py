"""The network policies allow exactly the call graph of docs/architecture.md, the bus and the
databases, and nothing else.

The test reads the rendered NetworkPolicies the way a CNI enforces them: a pod selected by
a policy of a type is isolated for that direction, and a connection between two pods of
the namespace needs both the source's egress and the destination's ingress to allow it.
It computes every allowed edge and compares the set with the one expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GRPC = "50051/TCP"
INTERNAL_CALLS = {
    ("delivery", "profile"),
    ("delivery", "segment"),
    ("delivery", "render"),
    ("render", "profile"),
    ("segments-recompute", "segment"),
    ("predict-train", "profile"),
}
SERVICES = ("ingest", "profile", "segment", "render", "delivery")
JOBS = ("migrate", "predict-train", "segments-recompute")
ANYWHERE = "anywhere"
DNS = "kube-system:k8s-app=kube-dns"
API_CLIENTS = "any-namespace:mailwright.io/api-client=true"
INGRESS_CONTROLLER = "ingress-nginx:app.kubernetes.io/name=ingress-nginx"
COLLECTORS = "any-namespace:app.kubernetes.io/name=opentelemetry-collector"
PROMETHEUS = "any-namespace:app.kubernetes.io/name=prometheus"
COLLECTOR = "otel-collector"
INTERNET = ("ip:0.0.0.0/0", "ip:::/0")
EXTERNAL_PORTS = ("443/TCP", "25/TCP", "465/TCP", "587/TCP")

Edge = tuple[str, str, str]


@dataclass(frozen=True)
class Workload:
    id: str
    labels: dict[str, str]


def _workloads(rendered: Any) -> list[Workload]:
    found = []
    for _, pod in rendered.workloads():
        labels = pod["metadata"]["labels"]
        if labels["app.kubernetes.io/name"] == "mailwright":
            found.append(Workload(labels["app.kubernetes.io/component"], labels))
        else:
            assert labels["app.kubernetes.io/name"] == "opentelemetry-collector"
            found.append(Workload(COLLECTOR, labels))
    return found


def _match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"selector form not modelled: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _describe(selector: dict[str, Any]) -> str:
    pairs = sorted(selector.get("matchLabels", {}).items())
    return ",".join(f"{k}={v}" for k, v in pairs) or "*"


def _targets(peers: list[dict[str, Any]] | None, namespace: str, pods: list[Workload]) -> set[str]:
    """What a rule's `to`/`from` list reaches: workload ids of this namespace, or symbols
    for what lies outside it."""
    if not peers:
        return {ANYWHERE}
    reached: set[str] = set()
    for peer in peers:
        if "ipBlock" in peer:
            assert "except" not in peer["ipBlock"]
            reached.add(f"ip:{peer['ipBlock']['cidr']}")
            continue
        pod_selector = peer.get("podSelector", {})
        local = {w.id for w in pods if _match(pod_selector, w.labels)}
        if "namespaceSelector" not in peer:
            reached |= local
            continue
        labels = peer["namespaceSelector"].get("matchLabels", {})
        if not labels:
            reached |= local
            reached.add(f"any-namespace:{_describe(pod_selector)}")
        elif labels == {"kubernetes.io/metadata.name": namespace}:
            reached |= local
        else:
            (name,) = labels.values()
            reached.add(f"{name}:{_describe(pod_selector)}")
    return reached


def _ports(rule: dict[str, Any]) -> set[str]:
    if "ports" not in rule:
        return {"*"}
    return {f"{p['port']}/{p.get('protocol', 'TCP')}" for p in rule["ports"]}


@dataclass(frozen=True)
class Rules:
    """The rules that apply to one workload in one direction: (targets, ports) pairs."""

    isolated: bool
    rules: tuple[tuple[frozenset[str], frozenset[str]], ...]

    def ports_to(self, peer: str) -> set[str]:
        if not self.isolated:
            return {"*"}
        allowed: set[str] = set()
        for targets, ports in self.rules:
            internet = any(t.startswith("ip:") for t in targets)
            if peer in targets or ANYWHERE in targets or internet:
                allowed |= ports
        return allowed


def _rules(rendered: Any, pods: list[Workload], workload: Workload, direction: str) -> Rules:
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolated = False
    rules = []
    for policy in rendered.of_kind("NetworkPolicy"):
        spec = policy["spec"]
        if not _match(spec["podSelector"], workload.labels):
            continue
        if direction not in spec["policyTypes"]:
            continue
        isolated = True
        for rule in spec.get(key, []):
            targets = _targets(rule.get(peers_key), rendered.namespace, pods)
            rules.append((frozenset(targets), frozenset(_ports(rule))))
    return Rules(isolated, tuple(rules))


def _intersect(a: set[str], b: set[str]) -> set[str]:
    if "*" in a:
        return set(b)
    if "*" in b:
        return set(a)
    return a & b


def _edges(rendered: Any) -> tuple[set[Edge], set[Edge], set[Edge]]:
    """(internal, outbound, inbound) edges allowed by the rendered policies."""
    pods = _workloads(rendered)
    ids = {w.id for w in pods}
    egress = {w.id: _rules(rendered, pods, w, "Egress") for w in pods}
    ingress = {w.id: _rules(rendered, pods, w, "Ingress") for w in pods}
    internal = {
        (src, dst, port)
        for src in ids
        for dst in ids
        if src != dst
        for port in _intersect(egress[src].ports_to(dst), ingress[dst].ports_to(src))
    }
    outbound = {
        (src, target, port)
        for src in ids
        for targets, ports in egress[src].rules
        for target in targets - ids
        for port in ports
    }
    inbound = {
        (source, dst, port)
        for dst in ids
        for sources, ports in ingress[dst].rules
        for source in sources - ids
        for port in ports
    }
    return internal, outbound, inbound


def _mailwright(rendered: Any) -> list[str]:
    return [w.id for w in _workloads(rendered) if w.id != COLLECTOR]


def _expected_internal(rendered: Any) -> set[Edge]:
    expected = {(src, dst, GRPC) for src, dst in INTERNAL_CALLS}
    if any(w.id == COLLECTOR for w in _workloads(rendered)):
        expected |= {(w, COLLECTOR, "4317/TCP") for w in _mailwright(rendered)}
    return expected


def _expected_outbound(rendered: Any) -> set[Edge]:
    expected: set[Edge] = set()
    for workload in _mailwright(rendered):
        expected |= {
            (workload, ANYWHERE, "5432/TCP"),
            (workload, ANYWHERE, "6379/TCP"),
            (workload, DNS, "53/UDP"),
            (workload, DNS, "53/TCP"),
            (workload, COLLECTORS, "4317/TCP"),
        }
    expected |= {("delivery", ip, port) for ip in INTERNET for port in EXTERNAL_PORTS}
    if COLLECTOR in {w.id for w in _workloads(rendered)}:
        expected |= {
            (COLLECTOR, DNS, "53/UDP"),
            (COLLECTOR, DNS, "53/TCP"),
            (COLLECTOR, ANYWHERE, "4317/TCP"),
        }
    return expected


def _expected_inbound(rendered: Any) -> set[Edge]:
    expected = {(API_CLIENTS, service, GRPC) for service in SERVICES}
    expected.add((INGRESS_CONTROLLER, "ingest", "8080/TCP"))
    if COLLECTOR in {w.id for w in _workloads(rendered)}:
        expected.add((PROMETHEUS, COLLECTOR, "8889/TCP"))
    return expected


def _sorted(edges: Iterable[Edge]) -> list[Edge]:
    return sorted(edges)


def test_every_pod_is_isolated_in_both_directions_by_a_default_deny(overlay: Any) -> None:
    deny = [
        p
        for p in overlay.of_kind("NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]

    assert len(deny) == 1


def test_pods_of_the_namespace_reach_each_other_exactly_along_the_call_graph(
    overlay: Any,
) -> None:
    internal, _, _ = _edges(overlay)

    assert _sorted(internal) == _sorted(_expected_internal(overlay))


def test_pods_reach_out_only_to_dns_the_datastores_telemetry_and_for_delivery_the_internet(
    overlay: Any,
) -> None:
    _, outbound, _ = _edges(overlay)

    assert _sorted(outbound) == _sorted(_expected_outbound(overlay))


def test_only_api_clients_the_ingress_controller_and_prometheus_reach_in(overlay: Any) -> None:
    _, _, inbound = _edges(overlay)

    assert _sorted(inbound) == _sorted(_expected_inbound(overlay))


def test_the_jobs_accept_no_connections(overlay: Any) -> None:
    internal, _, inbound = _edges(overlay)

    assert [e for e in inbound | internal if e[1] in JOBS] == []


def _with_rule(rendered: Any, policy: str, direction: str, rule: dict[str, Any]) -> Any:
    """The rendered overlay with one more rule in one policy (which then isolates that
    direction too)."""
    key = "ingress" if direction == "Ingress" else "egress"
    objects = []
    for obj in rendered.objects:
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] == policy:
            spec = dict(obj["spec"])
            spec["policyTypes"] = sorted({*spec["policyTypes"], direction})
            spec[key] = [*spec.get(key, []), rule]
            obj = {**obj, "spec": spec}
        objects.append(obj)
    return type(rendered)(rendered.overlay, tuple(objects))


def test_a_call_outside_the_graph_is_caught_once_both_ends_allow_it(overlay: Any) -> None:
    profile = {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "profile"}}}
    ingest = {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "ingest"}}}
    grpc = [{"port": 50051, "protocol": "TCP"}]
    egress_only = _with_rule(
        overlay, "mailwright-ingest", "Egress", {"to": [profile], "ports": grpc}
    )
    both = _with_rule(
        egress_only, "mailwright-profile", "Ingress", {"from": [ingest], "ports": grpc}
    )

    assert ("ingest", "profile", GRPC) not in _edges(egress_only)[0]
    assert ("ingest", "profile", GRPC) in _edges(both)[0]
