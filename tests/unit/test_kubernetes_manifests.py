"""The Kubernetes manifests in deploy/kubernetes hold together: every file parses, every
reference names an object defined beside it, the probes, roles and ports agree with what a
node serves, the KEDA trigger names a real consumer, and the Secret holds placeholders only.

``problems`` is the validator; each test runs one of its checks on the files as they are,
and ``test_the_validator_catches_a_broken_manifest`` breaks a copy in memory to show that
each check can fail."""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet
from docs_blocks import ROOT

from squall.engine.node import ROLES as NODE_ROLES
from squall.errors import ConfigError
from squall.security.cipher import load_cipher
from squall.security.keys import check_key_text
from squall.storage.nats.bus_url import parse_bus
from squall.storage.nats.subjects import consumer_name, stream_name

DEPLOY = ROOT / "deploy" / "kubernetes"
ROLES = set(NODE_ROLES)  # what squall node --roles accepts
PLACEHOLDER = "REPLACE_ME"
KEDA_FIELDS = {
    "natsServerMonitoringEndpoint",
    "account",
    "stream",
    "consumer",
    "lagThreshold",
    "activationLagThreshold",
}

Obj = dict[str, Any]


def load(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization() -> Obj:
    (doc,) = load(DEPLOY / "kustomization.yaml")
    return doc


def manifests() -> list[Obj]:
    return [obj for name in kustomization()["resources"] for obj in load(DEPLOY / name)]


def name(obj: Obj) -> str:
    return f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}"


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj.get("kind") == kind]


def containers(deployment: Obj) -> list[Obj]:
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def option(args: list[str], flag: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def roles(container: Obj) -> set[str] | None:
    value = option([str(arg) for arg in container.get("args", [])], "--roles")
    if value is None:
        value = next(
            (
                env.get("value")
                for env in container.get("env", [])
                if env.get("name") == "SQUALL_ROLES"
            ),
            None,
        )
    return None if value is None else {part.strip() for part in value.split(",")}


def walk(node: Any) -> Iterator[Obj]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def pod_labels(deployment: Obj) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"].get("labels", {})
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


# The checks: each returns what is wrong, naming the object and the field.


def check_identity(objects: list[Obj]) -> list[str]:
    found = []
    for obj in objects:
        for field in ("apiVersion", "kind"):
            if not obj.get(field):
                found.append(f"{name(obj)}: no {field}")
        if not obj.get("metadata", {}).get("name"):
            found.append(f"{name(obj)}: no metadata.name")
    return found


def check_selectors(objects: list[Obj]) -> list[str]:
    found = []
    deployments = of_kind(objects, "Deployment")
    for deployment in deployments:
        selector = deployment["spec"]["selector"].get("matchLabels", {})
        if not selects(selector, pod_labels(deployment)):
            found.append(
                f"{name(deployment)}: spec.selector {selector} does not match the"
                f" template's labels {pod_labels(deployment)}"
            )
    for kind, path in (
        ("Service", ("spec", "selector")),
        ("PodDisruptionBudget", ("spec", "selector", "matchLabels")),
    ):
        for obj in of_kind(objects, kind):
            selector = obj
            for key in path:
                selector = selector.get(key, {})
            if not any(selects(selector, pod_labels(d)) for d in deployments):
                found.append(f"{name(obj)}: {'.'.join(path)} {selector} matches no Deployment")
    for service in of_kind(objects, "Service"):
        targets = [d for d in deployments if selects(service["spec"]["selector"], pod_labels(d))]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for deployment in targets:
                ports = [p for c in containers(deployment) for p in c.get("ports", [])]
                if not any(target in (p.get("name"), p["containerPort"]) for p in ports):
                    found.append(
                        f"{name(service)}: targetPort {target!r} is no port of {name(deployment)}"
                    )
    return found


def check_references(objects: list[Obj]) -> list[str]:
    data: dict[tuple[str, str], set[str]] = {}
    for obj in objects:
        if obj.get("kind") in ("ConfigMap", "Secret"):
            keys = {*obj.get("data", {}), *obj.get("stringData", {})}
            data[obj["kind"], obj.get("metadata", {}).get("name", "")] = keys
    found = []
    for obj in objects:
        for node in walk(obj.get("spec")):
            refs = [
                ("ConfigMap", node.get("configMapRef"), None),
                ("Secret", node.get("secretRef"), None),
                ("ConfigMap", node.get("configMapKeyRef"), "key"),
                ("Secret", node.get("secretKeyRef"), "key"),
                ("ConfigMap", node.get("configMap"), None),
            ]
            if isinstance(node.get("secret"), dict):
                refs.append(("Secret", {"name": node["secret"].get("secretName")}, None))
            for kind, ref, key_field in refs:
                if not isinstance(ref, dict) or ref.get("optional"):
                    continue
                keys = data.get((kind, ref.get("name", "")))
                if keys is None:
                    found.append(
                        f"{name(obj)}: refers to {kind} {ref.get('name')!r},"
                        " which is not defined here"
                    )
                elif key_field and ref.get(key_field) not in keys:
                    found.append(
                        f"{name(obj)}: {kind} {ref.get('name')!r} has no key {ref.get(key_field)!r}"
                    )
    return found


def check_roles(objects: list[Obj]) -> list[str]:
    found, seen = [], set()
    for deployment in of_kind(objects, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            given = roles(container)
            if not given:
                found.append(
                    f"{name(deployment)}: container {container['name']!r} names no --roles"
                )
                continue
            if given - ROLES:
                found.append(
                    f"{name(deployment)}: unknown roles {sorted(given - ROLES)}"
                    f" (allowed: {', '.join(sorted(ROLES))})"
                )
            seen |= given
            port = option([str(arg) for arg in container.get("args", [])], "--port")
            numbers = {str(p["containerPort"]) for p in container.get("ports", [])}
            if port not in numbers:
                found.append(
                    f"{name(deployment)}: --port {port} is not a containerPort ({sorted(numbers)})"
                )
    if ROLES - seen:
        found.append(f"no Deployment runs the roles {sorted(ROLES - seen)}")
    return found


def check_probes(objects: list[Obj]) -> list[str]:
    wanted = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
    found = []
    for deployment in of_kind(objects, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            ports = container.get("ports", [])
            for probe, path in wanted.items():
                spec = container.get(probe)
                if spec is None:
                    if probe != "startupProbe":
                        found.append(f"{name(deployment)}: no {probe}")
                    continue
                get = spec.get("httpGet", {})
                if get.get("path") != path:
                    found.append(
                        f"{name(deployment)}: {probe} asks {get.get('path')!r}, not {path}"
                    )
                if not any(get.get("port") in (p.get("name"), p["containerPort"]) for p in ports):
                    found.append(
                        f"{name(deployment)}: {probe} port {get.get('port')!r} is not"
                        " a port of the container"
                    )
    return found


def check_scaled_objects(objects: list[Obj]) -> list[str]:
    invokers = [
        d["metadata"]["name"]
        for d in of_kind(objects, "Deployment")
        if any(roles(c) == {"invoker"} for c in d["spec"]["template"]["spec"]["containers"])
    ]
    scaled = of_kind(objects, "ScaledObject")
    found = [] if scaled else ["no ScaledObject scales the invokers"]
    for obj in scaled:
        spec = obj["spec"]
        target = spec.get("scaleTargetRef", {})
        if target.get("kind", "Deployment") != "Deployment" or target.get("name") not in invokers:
            found.append(
                f"{name(obj)}: scaleTargetRef {target} is not the invoker Deployment"
                f" ({', '.join(invokers)})"
            )
        if spec.get("minReplicaCount") != 0:
            found.append(f"{name(obj)}: minReplicaCount is {spec.get('minReplicaCount')!r}, not 0")
        if not spec.get("initialCooldownPeriod"):
            # The invokers make the consumers the triggers read: the first one must live.
            found.append(f"{name(obj)}: no initialCooldownPeriod for the first invoker")
        if not spec.get("triggers"):
            found.append(f"{name(obj)}: no triggers")
        for trigger in spec.get("triggers", []):
            meta = trigger.get("metadata", {})
            if trigger.get("type") != "nats-jetstream":
                found.append(f"{name(obj)}: trigger type {trigger.get('type')!r}")
            if KEDA_FIELDS - meta.keys():
                found.append(f"{name(obj)}: trigger lacks {sorted(KEDA_FIELDS - meta.keys())}")
            if meta.get("stream") != stream_name("squall", "work"):
                found.append(f"{name(obj)}: trigger stream {meta.get('stream')!r}, not SQUALL_WORK")
            consumer = str(meta.get("consumer", ""))
            function = consumer.removeprefix("fn~3A")
            if not consumer.startswith("fn~3A") or consumer != consumer_name(f"fn:{function}"):
                found.append(
                    f"{name(obj)}: consumer {consumer!r} is no function queue's"
                    " consumer (fn:NAME is read by fn~3ANAME)"
                )
    for deployment in of_kind(objects, "Deployment"):
        if deployment["metadata"]["name"] in invokers and "replicas" in deployment["spec"]:
            found.append(f"{name(deployment)}: sets replicas, which KEDA owns")
    return found


def looks_real(value: str) -> str | None:
    """Why ``value`` might be a real secret rather than a placeholder, or None."""
    if PLACEHOLDER not in value:
        return f"holds no {PLACEHOLDER}"
    for token in re.findall(r"[A-Za-z0-9_\-=]{32,}", value):
        try:
            if len(base64.urlsafe_b64decode(token)) == 32:
                return f"{token[:6]}… is a 32-byte base64 key"
        except (binascii.Error, ValueError):
            pass
    if re.search(r"[0-9a-fA-F]{32,}", value):
        return "holds a long hex string"
    if re.search(r"sq_[A-Za-z0-9_\-]{20,}", value):
        return "holds an API key"
    password = urlsplit(value).password if "://" in value else None
    if password is not None and PLACEHOLDER not in password:
        return "holds a password"
    return None


def check_secrets(objects: list[Obj]) -> list[str]:
    found = []
    for secret in of_kind(objects, "Secret"):
        if secret.get("data"):
            found.append(f"{name(secret)}: data holds base64 no reviewer reads; use stringData")
        for key, value in secret.get("stringData", {}).items():
            reason = looks_real(str(value))
            if reason:
                found.append(f"{name(secret)}: {key} looks like a real secret ({reason})")
    return found


CHECKS: list[Callable[[list[Obj]], list[str]]] = [
    check_identity,
    check_selectors,
    check_references,
    check_roles,
    check_probes,
    check_scaled_objects,
    check_secrets,
]


def problems(objects: list[Obj]) -> list[str]:
    return [problem for check in CHECKS for problem in check(objects)]


# The files as they are.


def test_every_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert {"kustomization.yaml", "nats.yaml", "postgres.yaml"} <= {p.name for p in files}
    for path in files:
        assert load(path), f"{path.relative_to(ROOT)} holds no YAML document"
    assert (DEPLOY / "Dockerfile").is_file() and (DEPLOY / "README.md").is_file()


def test_the_kustomization_lists_exactly_the_manifests_present() -> None:
    listed = kustomization()["resources"]
    present = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    assert set(listed) == present


def test_the_namespace_is_the_kustomizations() -> None:
    (namespace,) = of_kind(manifests(), "Namespace")
    assert namespace["metadata"]["name"] == kustomization()["namespace"]
    assert all("namespace" not in obj["metadata"] for obj in manifests())


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_manifests_pass(check: Callable[[list[Obj]], list[str]]) -> None:
    assert check(manifests()) == []


def test_each_role_has_its_deployment_and_the_scheduler_two_replicas() -> None:
    by_role = {}
    for deployment in of_kind(manifests(), "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        (role,) = roles(container) or {None}
        by_role[role] = deployment
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name(deployment)
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"], name(deployment)
    assert set(by_role) == ROLES
    assert by_role["scheduler"]["spec"]["replicas"] == 2
    grace = {
        role: d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        for role, d in by_role.items()
    }
    # Gateways let the sync calls in flight finish (29 s at most by default); the others need
    # time to close their sandboxes and connections.
    assert grace["gateway"] > 29 and min(grace.values()) >= 30


def test_the_dockerfile_runs_as_the_pods_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.12-slim$", text, re.M)
    assert "squall[cluster]" in text
    (user,) = re.findall(r"^USER (\d+)", text, re.M)
    for deployment in of_kind(manifests(), "Deployment"):
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user)


def test_the_settings_point_at_the_charts_the_readme_installs() -> None:
    objects = manifests()
    (config,) = of_kind(objects, "ConfigMap")
    (secret,) = of_kind(objects, "Secret")
    (scaled,) = of_kind(objects, "ScaledObject")
    (nats,) = load(DEPLOY / "values" / "nats.yaml")
    (postgres,) = load(DEPLOY / "values" / "postgres.yaml")
    assert nats["config"]["jetstream"]["enabled"] is True
    assert nats["config"]["cluster"]["replicas"] == 3
    bus = urlsplit(config["data"]["SQUALL_BUS"])
    assert (bus.scheme, bus.hostname, bus.port) == ("nats", "nats.nats.svc.cluster.local", 4222)
    jetstream = parse_bus(config["data"]["SQUALL_BUS"])  # as a node reads it
    assert jetstream.replicas == nats["config"]["cluster"]["replicas"]
    assert jetstream.prefix == "squall" and not jetstream.memory
    for trigger in scaled["spec"]["triggers"]:
        endpoint = trigger["metadata"]["natsServerMonitoringEndpoint"]
        assert (
            endpoint == f"nats-headless.nats.svc.cluster.local:{nats['config']['monitor']['port']}"
        )
    store = urlsplit(secret["stringData"]["SQUALL_STORE"])
    initdb = postgres["cluster"]["initdb"]
    assert (
        store.hostname == f"{postgres['fullnameOverride']}-rw.{kustomization()['namespace']}"
        ".svc.cluster.local"
    )
    assert (store.username, store.path) == (initdb["owner"], "/" + initdb["database"])


def test_the_placeholders_stop_the_platform(tmp_path: Path) -> None:
    (secret,) = of_kind(manifests(), "Secret")
    values = secret["stringData"]
    with pytest.raises(ConfigError) as caught:
        load_cipher(tmp_path, {"SQUALL_MASTER_KEY": values["SQUALL_MASTER_KEY"]})
    assert caught.value.field == "SQUALL_MASTER_KEY"
    with pytest.raises(ConfigError):
        check_key_text(values["SQUALL_ADMIN_KEY"], "SQUALL_ADMIN_KEY")


def test_real_looking_values_are_told_from_placeholders() -> None:
    assert looks_real(f"{PLACEHOLDER} (a Fernet key)") is None
    assert looks_real(Fernet.generate_key().decode()) is not None
    assert "32-byte" in (looks_real(f"{PLACEHOLDER} {Fernet.generate_key().decode()}") or "")
    assert "hex" in (looks_real(f"{PLACEHOLDER} {'ab12' * 16}") or "")
    assert "API key" in (looks_real(f"{PLACEHOLDER} sq_{'x' * 43}") or "")
    assert looks_real(f"postgresql://u:hunter2@db/{PLACEHOLDER}") == "holds a password"
    assert looks_real(f"postgresql://u:{PLACEHOLDER}@db/squall") is None


# Broken copies: each mutation must be caught, by a problem naming what broke.


def _deployment(objects: list[Obj], component: str) -> Obj:
    return next(
        d
        for d in of_kind(objects, "Deployment")
        if pod_labels(d).get("app.kubernetes.io/component") == component
    )


def _container(objects: list[Obj], component: str) -> Obj:
    container: Obj = _deployment(objects, component)["spec"]["template"]["spec"]["containers"][0]
    return container


def _trigger(objects: list[Obj]) -> Obj:
    trigger: Obj = of_kind(objects, "ScaledObject")[0]["spec"]["triggers"][0]["metadata"]
    return trigger


def _add_env(objects: list[Obj], component: str, source: Obj) -> None:
    _container(objects, component).setdefault("env", []).append({"name": "X", "valueFrom": source})


def _set_roles(objects: list[Obj], component: str, value: str) -> None:
    args = _container(objects, component)["args"]
    args[args.index("--roles") + 1] = value


MUTATIONS: dict[str, tuple[Callable[[list[Obj]], None], str]] = {
    "secretRef to a missing Secret": (
        lambda o: _container(o, "gateway")["envFrom"][1]["secretRef"].update(name="squall-secret"),
        "Secret 'squall-secret', which is not defined here",
    ),
    "configMapRef to a missing ConfigMap": (
        lambda o: _container(o, "invoker")["envFrom"][0]["configMapRef"].update(name="cfg"),
        "ConfigMap 'cfg', which is not defined here",
    ),
    "secretKeyRef to a missing key": (
        lambda o: _add_env(
            o, "scheduler", {"secretKeyRef": {"name": "squall-secrets", "key": "NOPE"}}
        ),
        "has no key 'NOPE'",
    ),
    "template labels that the selector misses": (
        lambda o: pod_labels(_deployment(o, "scheduler")).update(
            {"app.kubernetes.io/component": "cron"}
        ),
        "does not match the template's labels",
    ),
    "a Service selecting no pods": (
        lambda o: of_kind(o, "Service")[0]["spec"]["selector"].update(
            {"app.kubernetes.io/component": "gateways"}
        ),
        "Service squall-gateway: spec.selector",
    ),
    "a Service targetPort no container has": (
        lambda o: of_kind(o, "Service")[0]["spec"]["ports"][0].update(targetPort="web"),
        "targetPort 'web'",
    ),
    "a PodDisruptionBudget selecting no pods": (
        lambda o: of_kind(o, "PodDisruptionBudget")[0]["spec"]["selector"]["matchLabels"].update(
            {"app.kubernetes.io/name": "other"}
        ),
        "PodDisruptionBudget squall-gateway",
    ),
    "a ScaledObject aimed at the gateways": (
        lambda o: of_kind(o, "ScaledObject")[0]["spec"]["scaleTargetRef"].update(
            name="squall-gateway"
        ),
        "is not the invoker Deployment",
    ),
    "a floor of one invoker": (
        lambda o: of_kind(o, "ScaledObject")[0]["spec"].update(minReplicaCount=1),
        "minReplicaCount is 1",
    ),
    "no time for the first invoker to make the consumers": (
        lambda o: of_kind(o, "ScaledObject")[0]["spec"].pop("initialCooldownPeriod"),
        "no initialCooldownPeriod",
    ),
    "the delay stream as the trigger's": (
        lambda o: _trigger(o).update(stream="SQUALL_DELAY"),
        "trigger stream 'SQUALL_DELAY'",
    ),
    "an unescaped consumer name": (
        lambda o: _trigger(o).update(consumer="fn:resize"),
        "consumer 'fn:resize'",
    ),
    "a trigger without its threshold": (
        lambda o: _trigger(o).pop("lagThreshold"),
        "trigger lacks ['lagThreshold']",
    ),
    "another scaler": (
        lambda o: of_kind(o, "ScaledObject")[0]["spec"]["triggers"][0].update(type="cpu"),
        "trigger type 'cpu'",
    ),
    "replicas on the invoker": (
        lambda o: _deployment(o, "invoker")["spec"].update(replicas=1),
        "sets replicas, which KEDA owns",
    ),
    "an unknown role": (lambda o: _set_roles(o, "invoker", "worker"), "unknown roles ['worker']"),
    "a role no Deployment runs": (
        lambda o: _set_roles(o, "scheduler", "gateway"),
        "no Deployment runs the roles",
    ),
    "a --port the container does not expose": (
        lambda o: _container(o, "gateway")["args"].__setitem__(
            _container(o, "gateway")["args"].index("--port") + 1, "9000"
        ),
        "--port 9000 is not a containerPort",
    ),
    "a readiness probe on the wrong path": (
        lambda o: _container(o, "gateway")["readinessProbe"]["httpGet"].update(path="/ready"),
        "readinessProbe asks '/ready'",
    ),
    "a liveness probe on the wrong port": (
        lambda o: _container(o, "invoker")["livenessProbe"]["httpGet"].update(port=8080),
        "livenessProbe port 8080",
    ),
    "a missing readiness probe": (
        lambda o: _container(o, "scheduler").pop("readinessProbe"),
        "no readinessProbe",
    ),
    "a real master key in the Secret": (
        lambda o: of_kind(o, "Secret")[0]["stringData"].update(
            SQUALL_MASTER_KEY=f"{PLACEHOLDER} {Fernet.generate_key().decode()}"
        ),
        "SQUALL_MASTER_KEY looks like a real secret",
    ),
    "a real password in the store URL": (
        lambda o: of_kind(o, "Secret")[0]["stringData"].update(
            SQUALL_STORE=f"postgresql://squall:s3cret@db/{PLACEHOLDER}"
        ),
        "SQUALL_STORE looks like a real secret (holds a password)",
    ),
    "an object without a name": (
        lambda o: of_kind(o, "ConfigMap")[0]["metadata"].pop("name"),
        "no metadata.name",
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_validator_catches_a_broken_manifest(mutation: str) -> None:
    broken = copy.deepcopy(manifests())
    mutate, expected = MUTATIONS[mutation]
    mutate(broken)
    found = problems(broken)
    assert any(expected in problem for problem in found), found
