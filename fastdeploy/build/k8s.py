"""Kubernetes manifests for a built recipe.

Two layouts, chosen by where the queue lives:

- Embedded store (the default): API and loop must share one tmpfs, so they run
  as containers of one pod sharing a memory-backed volume at /dev/shm; each
  replica is a complete server with its own queue, and the Service keeps a
  client on one pod (so /result polls find their request).
- Shared Redis (``--store-url redis://…``): API and each stage's loops are
  Deployments of their own, scaled on their own: the API on CPU (an HPA), the
  loops on the length of their Redis queue (a KEDA ScaledObject), since a
  loop's CPU says little when it waits on a GPU or on its queue. The URL is
  kept in a Secret, not in the Deployments.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import yaml

from fastdeploy.recipe import Recipe
from fastdeploy.store.redis import queue_key

PORT = 8080


def _probe(path: str, period_s: int, failures: int) -> dict:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period_s, "timeoutSeconds": 3,
            "failureThreshold": failures}


def _container(name: str, image: str, args: list[str], env: list[dict]) -> dict:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "command": ["fastdeploy"],
            "args": args, "env": env, "volumeMounts": [{"name": "queue", "mountPath": "/dev/shm"}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False}}


def _api_container(image: str, env: list[dict]) -> dict:
    api = _container("api", image, ["--rest", "/app/recipe"], env)
    api["ports"] = [{"name": "http", "containerPort": PORT}]
    api["readinessProbe"] = _probe("/ready", 5, 3)
    api["livenessProbe"] = _probe("/health", 10, 3)
    api["startupProbe"] = _probe("/health", 2, 30)
    api["resources"] = {"requests": {"cpu": "250m", "memory": "256Mi"}}
    return api


def _loop_container(recipe: Recipe, image: str, env: list[dict], stage: int, options) -> dict:
    loop = _container(f"loop-{stage}", image, ["--loop", "/app/recipe", "--stage", str(stage)], env)
    loop["resources"] = _loop_resources(recipe, options)
    return loop


def _deployment(name: str, labels: dict, replicas: int, containers: list[dict]) -> dict:
    """tmpfs at /dev/shm: the embedded queue, uploads spooled by the API, file inputs of the loops."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 40,
                    "containers": containers,
                    "volumes": [{"name": "queue", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}],
                },
            },
        },
    }


def _service(name: str, labels: dict, selector: dict, sticky: bool) -> dict:
    spec = {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    if sticky:
        spec["sessionAffinity"] = "ClientIP"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels}, "spec": spec}


def _cpu_autoscaler(name: str, labels: dict, target: str, replicas: int) -> dict:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": replicas, "maxReplicas": _max_replicas(replicas),
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    }


def _max_replicas(replicas: int) -> int:
    return max(replicas * 4, replicas + 1)


def render_manifests(recipe: Recipe, image: str, options) -> dict[str, str]:
    name = image.rsplit("/", 1)[-1].split(":", 1)[0]
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "fastdeploy"}
    env = [{"name": "FASTDEPLOY_HOST", "value": "0.0.0.0"}, {"name": "FASTDEPLOY_PORT", "value": str(PORT)}]
    env += [{"name": key, "value": str(value)} for key, value in sorted(recipe.config.env.items())]
    if options.store_url:
        docs = _shared_store_layout(recipe, image, options, name, labels, env)
    else:
        docs = _one_pod_layout(recipe, image, options, name, labels, env)
    return {file: yaml.dump(doc, Dumper=PlainDumper, sort_keys=False) for file, doc in docs.items()}


def _one_pod_layout(recipe: Recipe, image: str, options, name: str, labels: dict, env: list[dict]) -> dict:
    loops = [_loop_container(recipe, image, env, stage, options) for stage in range(1, len(recipe.stages) + 1)]
    return {
        "deployment.yaml": _deployment(name, labels, options.replicas, [_api_container(image, env), *loops]),
        "service.yaml": _service(name, labels, labels, sticky=True),
        "hpa.yaml": _cpu_autoscaler(name, labels, name, options.replicas),
    }


def _shared_store_layout(recipe: Recipe, image: str, options, name: str, labels: dict, env: list[dict]) -> dict:
    secret = f"{name}-store"
    url = urlsplit(options.store_url)
    env = env + [{"name": "FASTDEPLOY_STORE_URL", "valueFrom": {"secretKeyRef": {"name": secret, "key": "url"}}},
                 {"name": "FASTDEPLOY_STORE_NAMESPACE", "value": name}]
    secret_data = {"url": options.store_url}
    if url.password:
        secret_data["password"] = unquote(url.password)
    docs = {"secret.yaml": {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                            "metadata": {"name": secret, "labels": labels}, "stringData": secret_data}}
    api_labels = {**labels, "app.kubernetes.io/component": "api"}
    docs["deployment-api.yaml"] = _deployment(f"{name}-api", api_labels, options.replicas,
                                              [_api_container(image, env)])
    docs["service.yaml"] = _service(name, labels, api_labels, sticky=False)  # any API pod reads any result
    docs["hpa.yaml"] = _cpu_autoscaler(f"{name}-api", labels, f"{name}-api", options.replicas)
    for stage in range(1, len(recipe.stages) + 1):
        loop_name = f"{name}-loop-{stage}"
        loop_env = env
        if url.password:  # KEDA's Redis scaler reads the password from the scaled container's env
            loop_env = env + [{"name": "FASTDEPLOY_REDIS_PASSWORD",
                               "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}]
        loop_labels = {**labels, "app.kubernetes.io/component": f"loop-{stage}"}
        docs[f"deployment-loop-{stage}.yaml"] = _deployment(
            loop_name, loop_labels, options.replicas, [_loop_container(recipe, image, loop_env, stage, options)])
        docs[f"keda-loop-{stage}.yaml"] = _queue_autoscaler(loop_name, labels, url, queue_key(name, stage), options)
    return docs


def _queue_autoscaler(target: str, labels: dict, url, queue: str, options) -> dict:
    """A KEDA ScaledObject: one more loop replica per ``queue_per_loop`` inputs waiting in its stage's list."""
    metadata = {"address": f"{url.hostname}:{url.port or 6379}", "listName": queue,
                "listLength": str(options.queue_per_loop), "databaseIndex": (url.path.strip("/") or "0"),
                "enableTLS": "true" if url.scheme == "rediss" else "false"}
    if url.password:
        metadata["passwordFromEnv"] = "FASTDEPLOY_REDIS_PASSWORD"
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": target, "labels": labels},
        "spec": {
            "scaleTargetRef": {"name": target},
            "minReplicaCount": options.replicas, "maxReplicaCount": _max_replicas(options.replicas),
            "triggers": [{"type": "redis", "metadata": metadata}],
        },
    }


class PlainDumper(yaml.SafeDumper):
    """Writes shared objects out in full: manifests are read by people, not only by parsers."""

    def ignore_aliases(self, data) -> bool:
        return True


def _loop_resources(recipe: Recipe, options) -> dict:
    declared = recipe.config.resources
    requests = {"cpu": str(declared.get("cpu", options.cpu)), "memory": str(declared.get("memory", options.memory))}
    limits = {"memory": requests["memory"]}
    if recipe.config.gpu or declared.get("gpu"):
        limits["nvidia.com/gpu"] = int(declared.get("gpu", 1))
    return {"requests": requests, "limits": limits}
