"""`fastdeploy --build`: generated files match their golden copies and hold what a careful Dockerfile needs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fastdeploy.build.context import BuildOptions, write_build_folder
from fastdeploy.cli import main
from fastdeploy.errors import RecipeError
from fastdeploy.recipe import load_recipe
from fastdeploy.store.redis import RedisStore
from tests.conftest import ECHO, ROOT

FULL = ROOT / "tests" / "data" / "recipes" / "build_full"
GOLDEN = ROOT / "tests" / "data" / "build"


def build(tmp_path, recipe=ECHO, **options) -> Path:
    out = tmp_path / "out"
    write_build_folder(load_recipe(recipe), out, BuildOptions(**options))
    return out


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined, parsed = "", []
    for line in dockerfile.splitlines():
        if not joined and (not line.strip() or line.lstrip().startswith("#")):
            continue
        joined += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            keyword, _, arguments = joined.partition(" ")
            parsed.append((keyword.upper(), arguments.strip()))
            joined = ""
    return parsed


@pytest.mark.parametrize("recipe, golden", [(ECHO, "echo"), (FULL, "build_full")])
def test_dockerfile_matches_golden_copy(tmp_path, recipe, golden):
    out = build(tmp_path, recipe, k8s=True, replicas=2)
    for name in ["Dockerfile", ".dockerignore"] + [f"k8s/{kind}.yaml" for kind in ("deployment", "service", "hpa")]:
        expected = (GOLDEN / golden / name).read_text()
        assert (out / name).read_text() == expected, f"{name} changed; if on purpose, copy it to {GOLDEN / golden}"


def test_dockerfile_is_what_a_careful_engineer_writes(tmp_path):
    steps = instructions((build(tmp_path, FULL) / "Dockerfile").read_text())
    keywords = [k for k, _ in steps]
    assert keywords[0] == "FROM" and ":" in steps[0][1] and not steps[0][1].endswith(":latest")
    copies = [args for k, args in steps if k == "COPY"]
    assert copies[0].startswith("recipe/requirements.txt")  # dependencies before code
    assert copies[-1].startswith("--chown=fastdeploy:fastdeploy recipe ")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert ("USER", "fastdeploy") in steps
    runs = " ".join(args for k, args in steps if k == "RUN")
    assert "--no-cache-dir" in runs and "rm -rf /var/lib/apt/lists/*" in runs
    assert "apt-get install -y --no-install-recommends python3 python3-venv libgomp1 ffmpeg" in runs  # CUDA base
    assert "sh /app/recipe/bootstrap.sh" in runs
    assert ("EXPOSE", "8080") in steps
    healthcheck = dict(steps)["HEALTHCHECK"]
    assert "/health" in healthcheck
    env = " ".join(args for k, args in steps if k == "ENV")
    assert "FASTDEPLOY_HOST=0.0.0.0" in env and 'MODEL_NAME="reverse"' in env
    assert dict(steps)["CMD"] == '["fastdeploy", "--run", "/app/recipe"]'
    assert steps[0][1] == "nvidia/cuda:12.4.1-runtime-ubuntu22.04"


def test_base_option_wins_and_start_bootstrap_wraps_the_command(tmp_path):
    recipe = tmp_path / "recipe"
    shutil.copytree(FULL, recipe)
    config = (recipe / "fastdeploy.yaml").read_text().replace("bootstrap_at: build", "bootstrap_at: start")
    (recipe / "fastdeploy.yaml").write_text(config)
    out = tmp_path / "out"
    write_build_folder(load_recipe(recipe), out, BuildOptions(base_image="python:3.12.1-slim"))
    steps = dict(instructions((out / "Dockerfile").read_text()))
    assert steps["FROM"] == "python:3.12.1-slim"
    assert steps["CMD"] == '["sh", "-c", "sh /app/recipe/bootstrap.sh && exec fastdeploy --run /app/recipe"]'


def test_build_folder_holds_the_recipe_and_fastdeploy_source(tmp_path):
    out = build(tmp_path)
    assert (out / "recipe" / "predictor.py").is_file()
    assert (out / "fastdeploy-src" / "setup.py").is_file()
    assert (out / "fastdeploy-src" / "fastdeploy" / "build" / "templates" / "Dockerfile.tmpl").is_file()
    assert not list(out.rglob("__pycache__"))


REQUIRED = {
    "Deployment": [("apiVersion",), ("metadata", "name"), ("spec", "selector", "matchLabels"),
                   ("spec", "template", "metadata", "labels"), ("spec", "template", "spec", "containers")],
    "Service": [("apiVersion",), ("metadata", "name"), ("spec", "selector"), ("spec", "ports")],
    "HorizontalPodAutoscaler": [("apiVersion",), ("metadata", "name"), ("spec", "scaleTargetRef", "name"),
                                ("spec", "maxReplicas"), ("spec", "metrics")],
    "Secret": [("apiVersion",), ("metadata", "name"), ("stringData",)],
    "ScaledObject": [("apiVersion",), ("metadata", "name"), ("spec", "scaleTargetRef", "name"),
                     ("spec", "maxReplicaCount"), ("spec", "triggers")],
}


def dig(document, path):
    for key in path:
        document = document[key]
    return document


def test_manifests_are_consistent_kubernetes_objects(tmp_path):
    out = build(tmp_path, FULL, k8s=True, replicas=2)
    docs = {doc["kind"]: doc for doc in (yaml.safe_load((out / "k8s" / f).read_text())
                                         for f in ("deployment.yaml", "service.yaml", "hpa.yaml"))}
    for kind, document in docs.items():
        for path in REQUIRED[kind]:
            assert dig(document, path), f"{kind} lacks {'.'.join(path)}"
    deployment, service, hpa = docs["Deployment"], docs["Service"], docs["HorizontalPodAutoscaler"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels == service["spec"]["selector"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert deployment["spec"]["replicas"] == hpa["spec"]["minReplicas"] == 2
    api, loop = deployment["spec"]["template"]["spec"]["containers"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert service["spec"]["ports"][0]["targetPort"] == api["ports"][0]["name"]
    assert loop["args"] == ["--loop", "/app/recipe", "--stage", "1"]
    assert loop["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in str(api["resources"])
    volume = deployment["spec"]["template"]["spec"]["volumes"][0]
    assert volume["emptyDir"]["medium"] == "Memory"
    assert all({"name": "queue", "mountPath": "/dev/shm"} in c["volumeMounts"] for c in (api, loop))


def test_chained_recipe_gets_a_loop_container_per_stage(tmp_path):
    out = build(tmp_path, ROOT / "recipes" / "echo_chained", k8s=True)
    containers = yaml.safe_load((out / "k8s" / "deployment.yaml").read_text())["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["api", "loop-1", "loop-2"]


@pytest.mark.parametrize("yaml_text, message", [
    ("colour: blue\n", "unknown key 'colour'"),
    ("gpu: yes please\n", "'gpu' must be a bool"),
    ("system_packages: curl\n", "'system_packages' must be a list"),
    ("resources: {disk: 10Gi}\n", "unknown key 'resources.disk'"),
    ("bootstrap: missing.sh\n", "'bootstrap' names missing.sh"),
    ("env: {MODEL: {nested: 1}}\n", "'env' entry 'MODEL'"),
])
def test_bad_declarations_name_the_key(tmp_path, yaml_text, message):
    recipe = tmp_path / "recipe"
    shutil.copytree(ECHO, recipe)
    (recipe / "fastdeploy.yaml").write_text(yaml_text)
    with pytest.raises(RecipeError, match=message):
        load_recipe(recipe)


def test_cli_writes_files_and_prints_next_steps_without_an_engine(tmp_path):
    result = CliRunner().invoke(main, ["--build", str(ECHO), "--out", str(tmp_path / "b"), "--no-docker", "--k8s",
                                       "--tag", "registry.example/team/echo:1"])
    assert result.exit_code == 0, result.output
    assert "docker build -t registry.example/team/echo:1" in result.output
    assert "docker run --rm -p 8080:8080 --shm-size=1g registry.example/team/echo:1" in result.output
    assert "kubectl apply -f" in result.output
    assert (tmp_path / "b" / "Dockerfile").is_file()


def load_manifests(folder: Path) -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yaml"))}


def test_shared_store_splits_api_and_each_stage_into_deployments_of_their_own(tmp_path):
    url = "redis://redis.default.svc:6380/2"
    out = build(tmp_path, ROOT / "recipes" / "echo_chained", k8s=True, replicas=2, store_url=url, queue_per_loop=16)
    docs = load_manifests(out / "k8s")
    assert sorted(docs) == ["deployment-api.yaml", "deployment-loop-1.yaml", "deployment-loop-2.yaml", "hpa.yaml",
                            "keda-loop-1.yaml", "keda-loop-2.yaml", "secret.yaml", "service.yaml"]
    for doc in docs.values():
        for path in REQUIRED[doc["kind"]]:
            assert dig(doc, path), f"{doc['kind']} lacks {'.'.join(path)}"
    api, service, hpa = docs["deployment-api.yaml"], docs["service.yaml"], docs["hpa.yaml"]
    api_labels = api["spec"]["template"]["metadata"]["labels"]
    assert api["spec"]["selector"]["matchLabels"] == api_labels == service["spec"]["selector"]
    assert "sessionAffinity" not in service["spec"], "any API pod reads any result: no stickiness needed"
    assert hpa["spec"]["scaleTargetRef"]["name"] == api["metadata"]["name"]
    [api_container] = api["spec"]["template"]["spec"]["containers"]
    assert api_container["args"] == ["--rest", "/app/recipe"]
    assert api_container["readinessProbe"]["httpGet"]["path"] == "/ready"
    secret = docs["secret.yaml"]
    assert secret["stringData"] == {"url": url}
    name = api["metadata"]["name"].removesuffix("-api")
    for stage in (1, 2):
        loop, scaler = docs[f"deployment-loop-{stage}.yaml"], docs[f"keda-loop-{stage}.yaml"]
        labels = loop["spec"]["template"]["metadata"]["labels"]
        assert loop["spec"]["selector"]["matchLabels"] == labels
        assert not set(service["spec"]["selector"].items()) <= set(labels.items()), "the Service must skip loops"
        [container] = loop["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["--loop", "/app/recipe", "--stage", str(stage)]
        env = {e["name"]: e for e in container["env"]}
        assert env["FASTDEPLOY_STORE_URL"]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"],
                                                                            "key": "url"}
        assert env["FASTDEPLOY_STORE_NAMESPACE"]["value"] == name
        assert scaler["spec"]["scaleTargetRef"]["name"] == loop["metadata"]["name"]
        assert (scaler["spec"]["minReplicaCount"], scaler["spec"]["maxReplicaCount"]) == (2, 8)
        [trigger] = scaler["spec"]["triggers"]
        # the list KEDA measures is the one the loops of this stage claim from
        queue = RedisStore(url, name).prefix + f"q:{stage}"
        assert trigger == {"type": "redis", "metadata": {
            "address": "redis.default.svc:6380", "listName": queue, "listLength": "16", "databaseIndex": "2",
            "enableTLS": "false"}}


def test_a_redis_password_reaches_keda_from_the_secret_not_the_manifest(tmp_path):
    out = build(tmp_path, k8s=True, store_url="rediss://:s%40cret@cache.example:6379/0")
    docs = load_manifests(out / "k8s")
    assert docs["secret.yaml"]["stringData"]["password"] == "s@cret"
    for name in ("deployment-api.yaml", "deployment-loop-1.yaml", "keda-loop-1.yaml", "hpa.yaml", "service.yaml"):
        assert "s@cret" not in yaml.safe_dump(docs[name]) and "s%40cret" not in yaml.safe_dump(docs[name])
    trigger = docs["keda-loop-1.yaml"]["spec"]["triggers"][0]["metadata"]
    assert trigger["passwordFromEnv"] == "FASTDEPLOY_REDIS_PASSWORD" and trigger["enableTLS"] == "true"
    [loop] = docs["deployment-loop-1.yaml"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in loop["env"]}
    assert env["FASTDEPLOY_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"


def test_cli_store_url_gives_the_shared_store_layout(tmp_path):
    result = CliRunner().invoke(main, ["--build", str(ECHO), "--out", str(tmp_path / "b"), "--no-docker", "--k8s",
                                       "--store-url", "redis://10.0.0.5:6379/0", "--k8s-queue-per-loop", "8"])
    assert result.exit_code == 0, result.output
    scaler = yaml.safe_load((tmp_path / "b" / "k8s" / "keda-loop-1.yaml").read_text())
    assert scaler["spec"]["triggers"][0]["metadata"]["listLength"] == "8"
    assert not (tmp_path / "b" / "k8s" / "deployment.yaml").exists()
