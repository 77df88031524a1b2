"""The OpenTelemetry Collector configuration is complete, and the prod overlay deploys it
listening where Mailwright sends and Prometheus scrapes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = ROOT / "deploy" / "otel" / "collector.yaml"
CONFIG = yaml.safe_load(CONFIG_FILE.read_text())


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _collector(prod: Any) -> tuple[Any, Any]:
    deployment = prod.named("Deployment", "mailwright-otel-collector")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container


def test_every_pipeline_uses_only_components_it_defines() -> None:
    for name, pipeline in CONFIG["service"]["pipelines"].items():
        for section in ("receivers", "processors", "exporters"):
            assert set(pipeline[section]) <= set(CONFIG[section]), (name, section)
    assert set(CONFIG["service"]["extensions"]) <= set(CONFIG["extensions"])


def test_traces_and_metrics_are_received_over_otlp_and_batched_within_a_memory_limit() -> None:
    pipelines = CONFIG["service"]["pipelines"]

    assert {"traces", "metrics"} <= set(pipelines)
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"][0] == "memory_limiter"
        assert "batch" in pipeline["processors"]
    assert "prometheus" in pipelines["metrics"]["exporters"]
    assert any(e.startswith("otlp") for e in pipelines["traces"]["exporters"])


def test_prod_deploys_this_configuration(prod: Any) -> None:
    deployment, container = _collector(prod)
    (volume,) = deployment["spec"]["template"]["spec"]["volumes"]
    config_map = prod.named("ConfigMap", volume["configMap"]["name"])
    (mount,) = container["volumeMounts"]

    assert config_map["data"]["collector.yaml"] == CONFIG_FILE.read_text()
    assert f"--config={mount['mountPath']}/collector.yaml" in container["args"]


def test_the_collector_listens_where_mailwright_sends_and_prometheus_scrapes(prod: Any) -> None:
    _, container = _collector(prod)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    service = prod.named("Service", "mailwright-otel-collector")
    service_ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    endpoint = prod.config()["MAILWRIGHT_TELEMETRY__OTLP_ENDPOINT"]

    assert _port(CONFIG["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]) == ports["otlp-grpc"]
    assert service_ports["otlp-grpc"] == _port(endpoint)
    assert _port(CONFIG["exporters"]["prometheus"]["endpoint"]) == ports["metrics"]
    assert _port(CONFIG["extensions"]["health_check"]["endpoint"]) == ports["health"]
    assert container["readinessProbe"]["httpGet"]["port"] == "health"


def test_every_environment_variable_the_configuration_reads_is_provided(prod: Any) -> None:
    _, container = _collector(prod)
    provided = {v["name"] for v in container.get("env", [])}
    for source in container.get("envFrom", []):
        provided |= set(prod.named("ConfigMap", source["configMapRef"]["name"])["data"])

    wanted = set(re.findall(r"\$\{env:(\w+)\}", CONFIG_FILE.read_text()))

    assert wanted
    assert wanted <= provided
