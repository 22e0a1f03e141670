"""deploy/k8s: the manifests parsed and cross-checked (no cluster or kubeconform here).

What matters for not losing money data: every collector replica has its own persistent
volume at the data directory (the WAL), probes hit the endpoints the API serves, the
grace period covers the drain, and the Services select the pods and name their ports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from featurecost.collector.server import CollectorConfig
from tests.deploy.test_compose import api_paths, collector_envvars

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# The oldest Kubernetes minor still in upstream support when this was written; the
# manifests use nothing newer.
KUBERNETES_VERSION = "1.32.0"


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    for name in listed:
        for document in yaml.safe_load_all((K8S / name).read_text()):
            assert {"apiVersion", "kind", "metadata"} <= set(document), name
            key = (document["kind"], document["metadata"]["name"])
            assert key not in found, key
            found[key] = document
    return found


def statefulset(manifests: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    return manifests[("StatefulSet", "featurecost-collector")]


def container(manifests: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    (only,) = statefulset(manifests)["spec"]["template"]["spec"]["containers"]
    return only


def env(manifests: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container(manifests)["env"]}


def test_everything_is_in_one_namespace(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (kind, name), document in manifests.items():
        if kind != "Namespace":
            assert document["metadata"]["namespace"] == "featurecost", name


def test_each_collector_keeps_its_wal_on_a_persistent_volume(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    spec = statefulset(manifests)["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    size = claim["spec"]["resources"]["requests"]["storage"]
    assert size.endswith("Gi")
    assert int(size[:-2]) * 1024**3 > CollectorConfig().wal_max_bytes
    mounts = {m["name"]: m["mountPath"] for m in container(manifests)["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env(manifests)["FEATURECOST_DATA_DIR"]
    assert spec["serviceName"] in {name for kind, name in manifests if kind == "Service"}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_probes_hit_health_and_readiness(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    c = container(manifests)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    e = env(manifests)
    assert ports == {
        "otlp-http": int(e["FEATURECOST_OTLP_HTTP_PORT"]),
        "otlp-grpc": int(e["FEATURECOST_OTLP_GRPC_PORT"]),
        "api": int(e["FEATURECOST_API_PORT"]),
    }
    paths = api_paths()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["path"] in paths
        assert c[probe]["httpGet"]["port"] == "api"


def test_resources_security_and_drain(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    c = container(manifests)
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][bound])
    pod = statefulset(manifests)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["terminationGracePeriodSeconds"] > CollectorConfig().drain_timeout
    e = env(manifests)
    unknown = set(e) - set(collector_envvars())
    assert not unknown
    assert e["FEATURECOST_HOST"] == "0.0.0.0"
    secret_ref = e["FEATURECOST_STORAGE"]["secretKeyRef"]
    secret = manifests[("Secret", secret_ref["name"])]
    assert secret_ref["key"] in secret["stringData"]
    assert secret["stringData"][secret_ref["key"]].startswith(("http://", "https://"))  # a server, not chDB


def test_services_select_the_pods_and_route_named_ports(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    labels = statefulset(manifests)["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in container(manifests)["ports"]}
    # the collectors' Services (the OTel gateway has its own: test_the_otel_gateway_...)
    services = [
        doc for (kind, name), doc in manifests.items() if kind == "Service" and name.startswith("featurecost-collector")
    ]
    assert len(services) == 2
    for service in services:
        assert service["spec"]["selector"].items() <= labels.items()
        assert {p["targetPort"] for p in service["spec"]["ports"]} == port_names
    pdb = manifests[("PodDisruptionBudget", "featurecost-collector")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_manifests_validate_against_the_kubernetes_schemas(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    # strict: a misspelt field (livenesProbe) is an error, not silently ignored as kubectl would
    for document in manifests.values():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_api_requires_tokens_from_a_secret(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    # In a cluster the API is reachable by every pod: reads and writes need tokens.
    variables = env(manifests)
    secret = manifests[("Secret", "featurecost-api")]
    for name in ("FEATURECOST_API_TOKEN", "FEATURECOST_ADMIN_TOKEN"):
        ref = variables[name]["secretKeyRef"]
        assert ref["name"] == "featurecost-api"
        assert ref["key"] in secret["stringData"]
        assert not ref.get("optional", False)


def test_each_pod_runs_one_worker_per_core_into_a_clickhouse_server(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    workers = int(env(manifests)["FEATURECOST_WORKERS"])
    assert workers > 1
    assert workers == int(container(manifests)["resources"]["limits"]["cpu"])
    # the manifests point the workers at a ClickHouse server: the config accepts it
    dsn = manifests[("Secret", "featurecost-storage")]["stringData"]["FEATURECOST_STORAGE"]
    assert CollectorConfig(workers=workers, storage_dsn=dsn).workers == workers


def test_the_otel_gateway_load_balances_traces_over_the_collector_pods(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    config_map = manifests[("ConfigMap", "featurecost-otel-gateway")]
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    # the ConfigMap carries the documented example verbatim
    assert config == yaml.safe_load((K8S.parent / "otel-collector" / "loadbalancing.yaml").read_text())
    exporter = config["exporters"]["loadbalancing/featurecost"]
    assert exporter["routing_key"] == "traceID"
    headless = manifests[("Service", statefulset(manifests)["spec"]["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None"
    resolver = exporter["resolver"]["dns"]
    assert resolver["hostname"] == f"{headless['metadata']['name']}.featurecost.svc.cluster.local"
    grpc = next(p for p in headless["spec"]["ports"] if p["targetPort"] == "otlp-grpc")
    assert resolver["port"] == grpc["port"] == int(env(manifests)["FEATURECOST_OTLP_GRPC_PORT"])
    for pipeline in config["service"]["pipelines"].values():
        assert pipeline["exporters"] == ["loadbalancing/featurecost"]

    deployment = manifests[("Deployment", "featurecost-otel-gateway")]
    pod = deployment["spec"]["template"]["spec"]
    (otelcol,) = pod["containers"]
    mount = next(m for m in otelcol["volumeMounts"] if m["name"] == "config")
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert otelcol["args"] == [f"--config={mount['mountPath']}/config.yaml"]
    receivers = config["receivers"]["otlp"]["protocols"]
    ports = {p["name"]: p["containerPort"] for p in otelcol["ports"]}
    assert receivers["grpc"]["endpoint"].endswith(f":{ports['otlp-grpc']}")
    assert receivers["http"]["endpoint"].endswith(f":{ports['otlp-http']}")
    assert config["extensions"]["health_check"]["endpoint"].endswith(f":{ports['health']}")
    for probe in ("readinessProbe", "livenessProbe"):
        assert otelcol[probe]["httpGet"]["port"] == "health"
    service = manifests[("Service", "featurecost-otel-gateway")]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"otlp-grpc", "otlp-http"}
    # the same pinned image as the compose file's OTel Collector
    compose = yaml.safe_load((K8S.parent / "docker-compose.yml").read_text())
    assert otelcol["image"] == compose["services"]["otel-collector"]["image"]
