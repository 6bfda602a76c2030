"""Kubernetes manifests for a built recipe: Deployment, Service, HorizontalPodAutoscaler.

With the embedded store, API and loop must share one tmpfs, so they run as two
containers of one pod sharing a memory-backed volume at /dev/shm; each replica
is a complete server with its own queue, and the Service keeps a client on
one pod (so /result polls find their request). Separate API and loop
Deployments, and scaling loops on queue length, need the shared Redis store.
"""

from __future__ import annotations

import yaml

from fastdeploy.recipe import Recipe

PORT = 8080


def _probe(path: str, period_s: int, failures: int) -> dict:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period_s, "timeoutSeconds": 3,
            "failureThreshold": failures}


def _container(name: str, image: str, args: list[str], env: list[dict]) -> dict:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "command": ["fastdeploy"],
            "args": args, "env": env, "volumeMounts": [{"name": "queue", "mountPath": "/dev/shm"}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False}}


def render_manifests(recipe: Recipe, image: str, options) -> dict[str, str]:
    name = image.rsplit("/", 1)[-1].split(":", 1)[0]
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "fastdeploy"}
    env = [{"name": "FASTDEPLOY_HOST", "value": "0.0.0.0"}, {"name": "FASTDEPLOY_PORT", "value": str(PORT)}]
    env += [{"name": key, "value": str(value)} for key, value in sorted(recipe.config.env.items())]
    api = _container("api", image, ["--rest", "/app/recipe"], env)
    api["ports"] = [{"name": "http", "containerPort": PORT}]
    api["readinessProbe"] = _probe("/ready", 5, 3)
    api["livenessProbe"] = _probe("/health", 10, 3)
    api["startupProbe"] = _probe("/health", 2, 30)
    api["resources"] = {"requests": {"cpu": "250m", "memory": "256Mi"}}
    loops = []
    for stage in range(1, len(recipe.stages) + 1):
        loop = _container(f"loop-{stage}", image, ["--loop", "/app/recipe", "--stage", str(stage)], env)
        loop["resources"] = _loop_resources(recipe, options)
        loops.append(loop)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 40,
                    "containers": [api, *loops],
                    "volumes": [{"name": "queue", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                 "sessionAffinity": "ClientIP"},
    }
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": options.replicas, "maxReplicas": max(options.replicas * 4, options.replicas + 1),
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    }
    return {f"{kind}.yaml": yaml.dump(doc, Dumper=PlainDumper, sort_keys=False)
            for kind, doc in (("deployment", deployment), ("service", service), ("hpa", hpa))}


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
