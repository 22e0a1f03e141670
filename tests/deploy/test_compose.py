"""deploy/: Dockerfile, docker-compose and the OpenTelemetry Collector configs, checked statically.

No Docker engine, otelcol binary or hadolint here, so these tests parse the files and
check that the pieces agree with each other and with the collector: ports, the
environment variables the CLI actually reads, health endpoints the API actually
serves, mounted paths that exist, pipelines that reference defined components.
"""

from __future__ import annotations

import json
import re
import shlex
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer.main
import yaml

from featurecost.collector.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def collector_envvars() -> dict[str, str]:
    """FEATURECOST_* variable → option name, as `featurecost collector` reads them."""
    command = typer.main.get_command(app).commands["collector"]  # type: ignore[attr-defined]
    result = {}
    for param in command.params:
        envvar = param.envvar
        if isinstance(envvar, str):
            result[envvar] = param.name or ""
    return result


def api_paths() -> set[str]:
    from featurecost.collector.api.app import create_api_app

    class _Stub:
        pass

    # Only the route table is read; nothing is served.
    routes = create_api_app(_Stub(), _Stub(), _Stub(), _Stub()).routes  # type: ignore[arg-type]
    return {getattr(route, "path", "") for route in routes}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load(DEPLOY / "docker-compose.yml")
    return data


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "use the mapping form for environment"
    return {k: str(v) for k, v in env.items()}


def default(value: str) -> str:
    """Resolve compose's ${VAR:-default} to its default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any]) -> None:
    # the Compose Specification's JSON schema, as vendored by check-jsonschema (offline)
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors


def test_compose_has_the_four_services_wired_together(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"clickhouse", "collector", "otel-collector", "grafana"}
    for name, service in services.items():
        image = service["image"]
        assert ":" in image, f"{name}: pin the image tag"
        assert not image.endswith(":latest"), f"{name}: pin the image tag"
        assert service.get("restart") == "unless-stopped", name
    assert services["collector"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert services["otel-collector"]["depends_on"]["collector"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) == {"clickhouse-data", "collector-data", "grafana-data"}


def test_healthchecks_probe_real_endpoints(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("clickhouse", "collector", "grafana"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check["retries"] >= 3, name
    collector_probe = " ".join(services["collector"]["healthcheck"]["test"])
    path = re.search(r"127\.0\.0\.1:(\d+)(/\w+)", collector_probe)
    assert path is not None
    assert path.group(1) == env_of(services["collector"])["FEATURECOST_API_PORT"]
    assert path.group(2) in api_paths()
    # the OTel image is distroless: its health comes from the health_check extension instead
    otel = load(DEPLOY / "otel-collector" / "config.yaml")
    assert "health_check" in otel["service"]["extensions"]


def test_collector_service_uses_options_the_cli_reads(compose: dict[str, Any]) -> None:
    known = collector_envvars()
    service = compose["services"]["collector"]
    env = env_of(service)
    unknown = {key for key in env if key.startswith("FEATURECOST_")} - set(known)
    assert not unknown, f"the collector does not read {unknown}"
    # data dir is the named volume, API published
    mounts = {m.split(":")[1]: m.split(":")[0] for m in service["volumes"]}
    assert mounts[env["FEATURECOST_DATA_DIR"]] == "collector-data"
    assert f"127.0.0.1:{env['FEATURECOST_API_PORT']}:{env['FEATURECOST_API_PORT']}" in service["ports"]
    assert env["FEATURECOST_HOST"] == "0.0.0.0"
    # storage DSN: ClickHouse's HTTP port, with the credentials and database ClickHouse is created with
    dsn = urlsplit(default(env["FEATURECOST_STORAGE"]))
    clickhouse = {k: default(v) for k, v in env_of(compose["services"]["clickhouse"]).items()}
    assert (dsn.scheme, dsn.hostname, dsn.port) == ("http", "clickhouse", 8123)
    assert (dsn.username, dsn.password) == (clickhouse["CLICKHOUSE_USER"], clickhouse["CLICKHOUSE_PASSWORD"])
    assert dsn.path.strip("/") == clickhouse["CLICKHOUSE_DB"]
    build = service["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_grafana_gets_plugin_datasource_and_dashboards(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    env = env_of(grafana)
    plugins = env["GF_INSTALL_PLUGINS"].split(",")
    assert {"grafana-clickhouse-datasource", "yesoreyeram-infinity-datasource"} <= set(plugins)
    mounts = {m.split(":")[1]: (DEPLOY / m.split(":")[0]).resolve() for m in grafana["volumes"] if m.startswith(".")}
    provisioning = mounts["/etc/grafana/provisioning"]
    assert provisioning == ROOT / "dashboards" / "provisioning"
    datasource = load(provisioning / "datasources" / "clickhouse.yaml")["datasources"][0]
    # the datasource reads its connection from Grafana's environment, which compose sets
    for placeholder in re.findall(r"\$\{(\w+)\}", yaml.safe_dump(datasource)):
        assert placeholder in env, placeholder
    assert env["FEATURECOST_CLICKHOUSE_HOST"] in compose["services"]
    # the report API datasource (cache savings in dollars) points at the collector's API port
    api = load(provisioning / "datasources" / "featurecost-api.yaml")["datasources"][0]
    for placeholder in re.findall(r"\$\{(\w+)\}", yaml.safe_dump(api)):
        assert placeholder in env, placeholder
    api_url = urlsplit(env["FEATURECOST_API_URL"])
    assert api_url.hostname in compose["services"]
    assert str(api_url.port) == env_of(compose["services"][api_url.hostname])["FEATURECOST_API_PORT"]
    providers = load(provisioning / "dashboards" / "featurecost.yaml")["providers"]
    (provider,) = providers
    dashboards_dir = mounts[provider["options"]["path"]]
    assert sorted(p.name for p in dashboards_dir.glob("*.json")) == ["featurecost-overview.json"]
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (dashboards_dir / Path(home).name).exists()


def test_otel_collector_forwards_to_the_collector(compose: dict[str, Any]) -> None:
    service = compose["services"]["otel-collector"]
    (mount,) = service["volumes"]
    source, target = mount.split(":")[:2]
    assert (DEPLOY / source).exists()
    assert f"--config={target}" in service["command"]
    config = load(DEPLOY / source)
    exporter = config["exporters"]["otlphttp/featurecost"]
    endpoint = urlsplit(exporter["endpoint"])
    collector_env = env_of(compose["services"]["collector"])
    assert endpoint.hostname == "collector"
    assert str(endpoint.port) == collector_env["FEATURECOST_OTLP_HTTP_PORT"]
    assert exporter["encoding"] == "proto"
    assert exporter["compression"] == "gzip"
    assert exporter["retry_on_failure"]["enabled"]
    assert exporter["sending_queue"]["enabled"]
    published = {p.split(":")[1] for p in service["ports"]}
    assert {"4317", "4318"} <= published


def test_every_published_port_is_bound_to_loopback(compose: dict[str, Any]) -> None:
    # The report API shows every tenant's costs, Grafana lets anonymous viewers in: nothing
    # is published on other interfaces unless the operator changes it (with tokens set).
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str), (name, port)
            assert port.startswith("127.0.0.1:"), (name, port)


@pytest.mark.parametrize("name", ["config.yaml", "loadbalancing.yaml"])
def test_otel_pipelines_reference_defined_components(name: str) -> None:
    config = load(DEPLOY / "otel-collector" / name)
    for pipeline_name, pipeline in config["service"]["pipelines"].items():
        assert pipeline_name.split("/")[0] == "traces"
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{name}: {pipeline_name} uses undefined {component}"
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"]


def test_loadbalancing_example_resolves_the_headless_service() -> None:
    config = load(DEPLOY / "otel-collector" / "loadbalancing.yaml")
    resolver = config["exporters"]["loadbalancing/featurecost"]["resolver"]["dns"]
    services = list(yaml.safe_load_all((DEPLOY / "k8s" / "collector-service.yaml").read_text()))
    headless = next(s for s in services if s["spec"].get("clusterIP") == "None")
    name, namespace = headless["metadata"]["name"], headless["metadata"]["namespace"]
    assert resolver["hostname"] == f"{name}.{namespace}.svc.cluster.local"
    # the exporter speaks OTLP/gRPC: it must hit the collectors' gRPC receiver, which the
    # headless Service names and the pods listen on (--otlp-grpc-port)
    grpc = next(p for p in headless["spec"]["ports"] if p["targetPort"] == "otlp-grpc")
    assert resolver["port"] == grpc["port"]
    statefulset = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / "collector-statefulset.yaml").read_text()) if d)
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["otlp-grpc"] == int(env["FEATURECOST_OTLP_GRPC_PORT"]) == grpc["port"]
    assert "otlp" in config["exporters"]["loadbalancing/featurecost"]["protocol"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert froms
    assert all(":" in f.split()[0] and "latest" not in f for f in froms)
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), source
    (user,) = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user not in ("root", "0")
    exposed = {p for keyword, rest in instructions if keyword == "EXPOSE" for p in rest.split()}
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    ports = dict(re.findall(r"(FEATURECOST_\w+_PORT)=(\d+)", env))
    assert set(ports.values()) == exposed
    for variable in re.findall(r"(FEATURECOST_\w+)=", env):
        assert variable in collector_envvars(), variable
    (entrypoint,) = [rest for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    assert entrypoint == '["featurecost", "collector"]'
    (healthcheck,) = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    probe = re.search(r"127\.0\.0\.1:(\d+)(/\w+)", healthcheck)
    assert probe is not None
    assert probe.group(1) == ports["FEATURECOST_API_PORT"]
    assert probe.group(2) in api_paths()
    data_dir = re.search(r"FEATURECOST_DATA_DIR=(\S+)", env)
    assert data_dir is not None
    assert any(keyword == "VOLUME" and data_dir.group(1) in rest for keyword, rest in instructions)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore
    assert "!instrumentation/" in ignore
    assert "!collector_exporter/" in ignore
