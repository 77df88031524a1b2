"""Every pod is restricted and sized, every service runs its role with gRPC probes on its
own service name, scales within its bounds, and starts only on a migrated schema."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from mailwright.runtime.clients import SERVICE_FULL_NAMES
from mailwright.runtime.settings import SERVICE_NAMES, Settings, load_settings

SERVICES = tuple(SERVICE_FULL_NAMES)
BUS_CONSUMERS = ("profile", "segment", "delivery")
DATA_DIR = "/var/lib/mailwright"


def _name(obj: Any) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _mailwright_containers(rendered: Any) -> list[tuple[str, Any]]:
    return [
        (f"{_name(obj)}/{c['name']}", c)
        for obj, pod in rendered.workloads()
        if pod["metadata"]["labels"]["app.kubernetes.io/name"] == "mailwright"
        for c in rendered.containers(pod)
    ]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# -- the restricted Pod Security profile -------------------------------------------------


def test_every_pod_runs_as_non_root_with_the_runtime_default_seccomp_profile(
    overlay: Any,
) -> None:
    for obj, pod in overlay.workloads():
        context = pod["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True, _name(obj)
        assert context["runAsUser"] > 0, _name(obj)
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, _name(obj)
        assert pod["spec"]["automountServiceAccountToken"] is False, _name(obj)


def test_every_container_is_restricted_with_a_read_only_root_filesystem(overlay: Any) -> None:
    for obj, pod in overlay.workloads():
        for container in overlay.containers(pod):
            where = f"{_name(obj)}/{container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert "privileged" not in context, where


def test_every_container_has_cpu_and_memory_requests_and_limits(overlay: Any) -> None:
    for obj, pod in overlay.workloads():
        for container in overlay.containers(pod):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) == {"cpu", "memory"}, (_name(obj), container["name"])


def test_mailwright_writes_only_to_empty_dirs_at_the_data_dir_and_tmp(overlay: Any) -> None:
    assert overlay.config()["MAILWRIGHT_DATA_DIR"] == DATA_DIR
    for obj, pod in overlay.workloads():
        if pod["metadata"]["labels"]["app.kubernetes.io/name"] != "mailwright":
            continue
        empty_dirs = {v["name"] for v in pod["spec"]["volumes"] if "emptyDir" in v}
        for container in overlay.containers(pod):
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert {DATA_DIR, "/tmp"} <= set(mounts), (_name(obj), container["name"])
            assert {mounts[DATA_DIR], mounts["/tmp"]} <= empty_dirs, _name(obj)


# -- each service in its role ------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_serves_its_own_role(overlay: Any, service: str) -> None:
    deployment = overlay.named("Deployment", f"mailwright-{service}")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]

    assert container["args"] == ["serve", service]


@pytest.mark.parametrize("service", SERVICES)
def test_probes_are_native_grpc_health_checks_of_the_service_name(
    overlay: Any, service: str
) -> None:
    deployment = overlay.named("Deployment", f"mailwright-{service}")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    grpc_port = int(overlay.config()["MAILWRIGHT_GRPC_PORT"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    assert ports["grpc"] == grpc_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {
            "port": grpc_port,
            "service": SERVICE_FULL_NAMES[service],
        }, probe


def test_pods_outlive_the_graceful_shutdown(overlay: Any) -> None:
    settings = _settings(overlay.config())
    for service in SERVICES:
        pod = overlay.named("Deployment", f"mailwright-{service}")["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = timedelta(seconds=pod["spec"]["terminationGracePeriodSeconds"])
        assert grace > settings.shutdown_grace + timedelta(seconds=pause), service


def test_only_ingest_serves_the_http_edge_and_the_ingress_reaches_it(overlay: Any) -> None:
    http_port = int(overlay.config()["MAILWRIGHT_HTTP_PORT"])
    (ingress,) = overlay.of_kind("Ingress")
    backends = {
        (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"])
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    service = overlay.named("Service", "mailwright-ingest")
    (http,) = [p for p in service["spec"]["ports"] if p["name"] == "http"]
    (container,) = overlay.named("Deployment", "mailwright-ingest")["spec"]["template"]["spec"][
        "containers"
    ]

    assert backends == {("mailwright-ingest", "http")}
    assert {"name": "http", "containerPort": http_port, "protocol": "TCP"} in container["ports"]
    assert http["targetPort"] == "http"
    for other in SERVICES[1:]:
        ports = overlay.named("Service", f"mailwright-{other}")["spec"]["ports"]
        assert [p["name"] for p in ports] == ["grpc"], other


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_reached_at_the_address_in_the_config(overlay: Any, service: str) -> None:
    host, port = overlay.config()[f"MAILWRIGHT_ADDRESSES__{service.upper()}"].split(":")
    kube_service = overlay.named("Service", host)
    deployment = overlay.named("Deployment", f"mailwright-{service}")

    assert _selects(
        kube_service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]
    )
    assert {"name": "grpc", "port": int(port)}.items() <= kube_service["spec"]["ports"][0].items()


# -- availability and scale --------------------------------------------------------------


def test_every_deployment_has_a_disruption_budget_and_an_autoscaler(overlay: Any) -> None:
    budgets = overlay.of_kind("PodDisruptionBudget")
    scalers = {
        h["spec"]["scaleTargetRef"]["name"]
        for h in overlay.of_kind("HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    }
    for deployment in overlay.of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if _selects(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(covering) == 1, _name(deployment)
        assert deployment["metadata"]["name"] in scalers, _name(deployment)


def test_autoscalers_scale_on_cpu_between_sane_bounds(overlay: Any) -> None:
    for scaler in overlay.of_kind("HorizontalPodAutoscaler"):
        spec = scaler["spec"]
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"], _name(scaler)
        (metric,) = spec["metrics"]
        assert metric["resource"]["name"] == "cpu"


@pytest.mark.parametrize("service", BUS_CONSUMERS)
def test_bus_consumers_scale_no_further_than_the_bus_partitions(overlay: Any, service: str) -> None:
    partitions = int(overlay.config()["MAILWRIGHT_BUS_PARTITIONS"])
    scaler = overlay.named("HorizontalPodAutoscaler", f"mailwright-{service}")

    assert scaler["spec"]["maxReplicas"] <= partitions


def test_prod_spreads_replicas_over_nodes_and_zones(prod: Any) -> None:
    for service in SERVICES:
        spec = prod.named("Deployment", f"mailwright-{service}")["spec"]["template"]["spec"]
        own = {"app.kubernetes.io/name": "mailwright", "app.kubernetes.io/component": service}
        (anti,) = spec["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ]
        (spread,) = spec["topologySpreadConstraints"]
        assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert anti["podAffinityTerm"]["labelSelector"]["matchLabels"] == own
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert spread["labelSelector"]["matchLabels"] == own


def test_prod_keeps_at_least_two_replicas_of_every_service(prod: Any) -> None:
    for service in SERVICES:
        scaler = prod.named("HorizontalPodAutoscaler", f"mailwright-{service}")
        assert scaler["spec"]["minReplicas"] >= 2, service


# -- migrations and jobs -----------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_starts_only_on_a_migrated_schema(overlay: Any, service: str) -> None:
    pod = overlay.named("Deployment", f"mailwright-{service}")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]

    assert init["args"][:3] == ["migrate", "--check", "--wait"]
    assert init["args"][4:] == ["--service", service]
    assert {v["name"] for v in init["env"]} == {"MAILWRIGHT_DATABASE_URL"}


def test_the_migration_job_migrates_every_service_before_the_sync(overlay: Any) -> None:
    job = overlay.named("Job", "mailwright-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]

    assert container["args"] == ["migrate"]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_the_migration_job_needs_nothing_the_sync_creates_but_the_secret(overlay: Any) -> None:
    """A PreSync hook runs before the sync applies this release's ConfigMap."""
    job = overlay.named("Job", "mailwright-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    references = {next(iter(v["valueFrom"])) for v in container["env"] if "valueFrom" in v}

    assert "envFrom" not in container
    assert references == {"secretKeyRef"}


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("mailwright-predict-train", ["predict", "train"]),
        ("mailwright-segments-recompute", ["segments", "recompute", "--all"]),
    ],
)
def test_cron_jobs_run_the_documented_commands_one_at_a_time(
    overlay: Any, name: str, args: list[str]
) -> None:
    cron = overlay.named("CronJob", name)
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]

    assert container["args"] == args
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert re.fullmatch(r"(\S+ ){4}\S+", cron["spec"]["schedule"])


# -- settings ----------------------------------------------------------------------------

SAMPLE_SECRETS = {
    "MAILWRIGHT_AUTH_SECRET": "a" * 48,
    "MAILWRIGHT_SIGNING_KEYS": "new-signing-key,old-signing-key",
    "MAILWRIGHT_DATABASE_URL": "postgresql+psycopg://mailwright@db:5432/mailwright_{service}",
    "MAILWRIGHT_BUS_URL": "redis://redis:6379/0",
}


def _settings(config: dict[str, str]) -> Any:
    saved = {k: v for k, v in os.environ.items() if k.startswith("MAILWRIGHT_")}
    for key in saved:
        del os.environ[key]
    try:
        os.environ.update(config)
        os.environ.update(SAMPLE_SECRETS)
        return load_settings()
    finally:
        for key in [k for k in os.environ if k.startswith("MAILWRIGHT_")]:
            del os.environ[key]
        os.environ.update(saved)


def _is_setting(variable: str) -> bool:
    """Whether `variable` names a Mailwright setting. Settings ignore unknown variables, so
    a misspelt one would silently leave its default in force."""
    if variable == "MAILWRIGHT_CONFIG":
        return True
    if not variable.startswith("MAILWRIGHT_"):
        return False
    path = variable.removeprefix("MAILWRIGHT_").lower().split("__")
    field = Settings.model_fields.get(path[0])
    if field is None:
        return False
    if path[0] == "addresses":
        return len(path) == 2 and path[1] in SERVICE_NAMES
    if path[0] == "services":
        return len(path) >= 3 and path[1] in SERVICE_NAMES
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
        return len(path) == 2 and path[1] in field.annotation.model_fields
    return len(path) == 1


def test_the_recognised_names_are_exactly_the_settings() -> None:
    assert _is_setting("MAILWRIGHT_TELEMETRY__OTLP_ENDPOINT")
    assert _is_setting("MAILWRIGHT_ADDRESSES__PROFILE")
    assert not _is_setting("MAILWRIGHT_LOGLEVEL")
    assert not _is_setting("MAILWRIGHT_TELEMETRY__ENDPOINT")
    assert not _is_setting("MAILWRIGHT_ADDRESSES__BILLING")


def test_the_config_names_only_settings_mailwright_knows(overlay: Any) -> None:
    assert [k for k in overlay.config() if not _is_setting(k)] == []


def test_the_containers_name_only_settings_mailwright_knows(overlay: Any) -> None:
    unknown = [
        f"{where}: {v['name']}"
        for where, container in _mailwright_containers(overlay)
        for v in container.get("env", [])
        if v["name"].startswith("MAILWRIGHT_") and not _is_setting(v["name"])
    ]

    assert unknown == []


def test_the_config_and_secret_formats_are_valid_mailwright_settings(overlay: Any) -> None:
    """Every value parses: a bad one would stop every pod at start."""
    settings = _settings(overlay.config())

    assert settings.grpc_host == "0.0.0.0"
    assert settings.signing_keys == ["new-signing-key", "old-signing-key"]
    assert settings.database_url_for("profile").endswith("/mailwright_profile")
    assert set(settings.addresses) == set(SERVICES)
