"""Every overlay builds with kustomize, and every object it renders is a valid Kubernetes
object, labelled, in its namespace, with no secret value in it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

ROOT = Path(__file__).resolve().parents[2]

# The oldest Kubernetes the manifests support (native gRPC probes, the preStop sleep
# action, matchLabelKeys in topology spread) and the newest schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.31", kubernetes_validate.utils.latest_version())

# The recommended labels (kubernetes.io/docs/concepts/overview/working-with-objects/
# common-labels/): on everything, and on everything but the namespace.
EVERYWHERE = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
)
RECOMMENDED = (*EVERYWHERE, "app.kubernetes.io/component", "app.kubernetes.io/version")
SECRET_VARIABLES = re.compile(r"(SECRET|PASSWORD|TOKEN|KEY|_URL$|CREDENTIAL)", re.IGNORECASE)
# Settings that name a place, not a secret; the URL settings that carry credentials
# (database, bus, key-value store) must come from a Secret.
PLAIN_URLS = {"MAILWRIGHT_PUBLIC_BASE_URL"}


def test_base_builds_on_its_own(base: Any) -> None:
    assert base.of_kind("Deployment")


def test_overlay_builds(overlay: Any) -> None:
    kinds = {o["kind"] for o in overlay.objects}

    assert {"Deployment", "Service", "NetworkPolicy", "Job", "CronJob", "Ingress"} <= kinds


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schema(overlay: Any, version: str) -> None:
    failures = []
    for obj in overlay.objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            failures.append(error.message)

    assert failures == []


def test_everything_is_in_the_overlay_namespace(overlay: Any) -> None:
    namespace = overlay.namespace

    outside = [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in overlay.objects
        if o["kind"] != "Namespace" and o["metadata"].get("namespace") != namespace
    ]

    assert outside == []


def test_the_namespace_enforces_the_restricted_pod_security_standard(overlay: Any) -> None:
    (namespace,) = overlay.of_kind("Namespace")

    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_object_and_pod_carries_the_recommended_labels(overlay: Any) -> None:
    missing = []
    for obj in overlay.objects:
        labels = obj["metadata"].get("labels", {})
        expected = EVERYWHERE if obj["kind"] == "Namespace" else RECOMMENDED
        missing += [
            f"{obj['kind']}/{obj['metadata']['name']}: {k}" for k in expected if k not in labels
        ]
    for obj, pod in overlay.workloads():
        labels = pod["metadata"].get("labels", {})
        missing += [
            f"pod of {obj['metadata']['name']}: {k}" for k in RECOMMENDED if k not in labels
        ]

    assert missing == []


def test_instance_label_names_the_overlay(overlay: Any) -> None:
    instances = {o["metadata"]["labels"]["app.kubernetes.io/instance"] for o in overlay.objects}

    assert instances == {f"mailwright-{overlay.overlay}"}


def test_no_secret_object_is_defined(overlay: Any) -> None:
    assert overlay.of_kind("Secret") == []


def test_secret_settings_come_from_secret_references_only(overlay: Any) -> None:
    literal = []
    for obj, pod in overlay.workloads():
        for container in overlay.containers(pod):
            for variable in container.get("env", []):
                name = variable["name"]
                from_secret = "secretKeyRef" in variable.get("valueFrom", {})
                if SECRET_VARIABLES.search(name) and name not in PLAIN_URLS and not from_secret:
                    literal.append(f"{obj['metadata']['name']}/{container['name']}: {name}")
    for config_map in overlay.of_kind("ConfigMap"):
        for key in config_map.get("data", {}):
            if SECRET_VARIABLES.search(key) and key not in PLAIN_URLS:
                literal.append(f"ConfigMap {config_map['metadata']['name']}: {key}")

    assert literal == []


def test_every_mailwright_process_gets_the_auth_secret_it_verifies_tokens_with(
    overlay: Any,
) -> None:
    """Without it every pod would sign with its own random key and reject the others'."""
    without = []
    for obj in overlay.of_kind("Deployment"):
        if obj["metadata"]["labels"]["app.kubernetes.io/name"] != "mailwright":
            continue
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        names = {v["name"] for v in container.get("env", [])}
        if not {"MAILWRIGHT_AUTH_SECRET", "MAILWRIGHT_DATABASE_URL", "MAILWRIGHT_BUS_URL"} <= names:
            without.append(obj["metadata"]["name"])

    assert without == []


def _images(rendered: Any) -> set[str]:
    return {c["image"] for _, pod in rendered.workloads() for c in rendered.containers(pod)}


def test_prod_images_are_pinned_to_a_release(prod: Any) -> None:
    pinned = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$")

    assert sorted(i for i in _images(prod) if not pinned.match(i)) == []


def test_prod_version_label_is_the_mailwright_image_tag(prod: Any) -> None:
    for obj, pod in prod.workloads():
        if obj["metadata"]["labels"]["app.kubernetes.io/name"] != "mailwright":
            continue
        tags = {c["image"].rsplit(":", 1)[1] for c in prod.containers(pod)}
        assert tags == {pod["metadata"]["labels"]["app.kubernetes.io/version"]}, obj["metadata"]


def test_prod_sends_telemetry_to_the_collector_it_deploys(prod: Any) -> None:
    config = prod.config()
    collector = prod.named("Service", "mailwright-otel-collector")
    otlp_port = next(p["port"] for p in collector["spec"]["ports"] if p["name"] == "otlp-grpc")

    assert config["MAILWRIGHT_TELEMETRY__EXPORTER"] == "otlp"
    assert (
        config["MAILWRIGHT_TELEMETRY__OTLP_ENDPOINT"]
        == f"http://mailwright-otel-collector:{otlp_port}"
    )


def test_dev_runs_one_replica_of_each_service(dev: Any) -> None:
    bounds = {
        h["metadata"]["name"]: (h["spec"]["minReplicas"], h["spec"]["maxReplicas"])
        for h in dev.of_kind("HorizontalPodAutoscaler")
    }

    assert set(bounds.values()) == {(1, 1)}
    assert all(
        "replicas" not in d["spec"] or d["spec"]["replicas"] == 1 for d in dev.of_kind("Deployment")
    )
