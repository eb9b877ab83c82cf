"""The platform chart on the real node: one `helm install` of charts/culture-platform (the operator
chart as its dependency) runs the operator as a pod, which reconciles the chart's CulturePlatform into
pods that get Ready, and the platform serves the design's three flows through its gateway Service.

Every database is `managed`: StatefulSets of the databases image built here (Debian PostgreSQL and
Redis, the stack's Cassandra and Neo4j jars, SecantusDB), on local-path-provisioner's volumes. Kafka
and SMTP are the local stack's (mode external; pods reach 127.0.0.1:19092 and :12525, redirected to
the host by the node's pod network). The platform enables every service this build has (`culture
serve` knows its roles). A platform on external databases (the stack's) is `skaffold run -p local`'s,
tested in test_skaffold.py.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cluster_kube import Kube, describe, ready

from culture_events.testing import wait_until_sync
from culture_operator.spec import SERVICE_ROLES
from culture_runtime.serve import roles_of
from culture_stack import paths
from culture_stack.cluster import images
from culture_stack.ports import HOST, KAFKA, SMTP
from culture_stack.server import Context, say

pytestmark = pytest.mark.e2e

#: service -> the roles this build runs (what the platform below deploys with replicas)
BUILT = {s: tuple(r for r in roles if r in roles_of(s)) for s, roles in SERVICE_ROLES.items()}
BUILT = {s: roles for s, roles in BUILT.items() if roles}
SCALED = ("identity", "api-read")
EXTERNAL_DATABASES = ("postgres", "redis", "mongo", "neo4j", "cassandra")
EXAMPLE = paths.repo_root() / "examples" / "cultureplatform-here.yaml"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
NAME = "app.kubernetes.io/name"


@pytest.fixture(scope="session")
def project_images(cluster: Kube, cluster_ctx: Context) -> dict[str, str]:
    """The operator and services images, built by buildah from their Dockerfiles (cached by tag)."""
    tag = images.image_tag()
    return {name: images.build_project_image(cluster_ctx, name, tag=tag) for name in images.PROJECT_IMAGES}


def platform(name: str, namespace: str, image: str, prefix: str) -> dict[str, Any]:
    """examples/cultureplatform-here.yaml (every built service; Kafka and databases external), with
    this test's name, namespace, image and topic prefix."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] = {"name": name, "namespace": namespace}
    doc["spec"]["image"] = image
    doc["spec"]["kafka"]["topicPrefix"] = prefix
    assert sorted(doc["spec"]["databases"]) == sorted(EXTERNAL_DATABASES)
    assert doc["spec"]["kafka"]["bootstrapServers"] == [f"{HOST}:{KAFKA}"]
    assert doc["spec"]["smtp"] == {"host": HOST, "port": SMTP}
    return doc


def _role_pods(cluster: Kube, namespace: str, name: str, service: str, role: str) -> list[dict[str, Any]]:
    return cluster.pods(namespace, f"{INSTANCE}={name},{NAME}={service},{COMPONENT}={role}")


def platform_chart(cluster: Kube, into: Path) -> Path:
    """A copy of the platform and operator charts with the platform chart's dependency built."""
    for chart in ("culture-operator", "culture-platform"):
        shutil.copytree(paths.repo_root() / "charts" / chart, into / chart)
    cluster.helm_run("dependency", "build", str(into / "culture-platform"))
    return into / "culture-platform"


MANAGED = ("postgres", "redis", "mongo", "neo4j", "cassandra")


@pytest.fixture(scope="session")
def databases_image(cluster: Kube, cluster_ctx: Context) -> str:
    """The managed databases' image of this node (Debian PostgreSQL and Redis, the stack's Cassandra and
    Neo4j jars, SecantusDB), built by buildah (cached by the hash of what it is built from)."""
    return images.build_databases_image(cluster_ctx)


def _gateway(cluster: Kube, namespace: str, name: str) -> str:
    """The gateway Service's address, reached from this host (the node) through kube-proxy."""
    svc = cluster.get("service", f"{name}-gateway-api", "-n", namespace)
    return f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}"


def _cp_ready(cluster: Kube, namespace: str, name: str) -> bool:
    cp = cluster.get("cp", name, "-n", namespace) or {}
    conditions = cp.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _register(http: httpx.Client, who: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Register through the gateway; wait for every step of the registration job (account, profile,
    welcome mail, graph node, feed); log in. Returns (user id, account, auth header)."""
    account = {"username": who, "email": f"{who}@example.org", "password": "correct horse battery",
               "display_name": f"Reader {who}"}
    reply = http.post("/api/register", json=account)
    assert reply.status_code == 201, reply.text
    user_id, job_id = reply.json()["user"]["user_id"], reply.json()["job_id"]

    def job_done() -> dict[str, Any] | None:
        status = http.get(f"/status/{job_id}")
        assert status.status_code in (200, 404), status.text
        job = status.json() if status.status_code == 200 else {}
        assert job.get("state") != "failed", job
        return job if job.get("state") == "succeeded" else None

    job = wait_until_sync(job_done, 180, f"{who}'s registration job to succeed", interval=0.5)
    assert {s["name"]: s["state"] for s in job["steps"]} == dict.fromkeys(
        ("account", "profile", "welcome-mail", "graph", "feed"), "succeeded"), job
    return user_id, account, _login(http, account)


def _login(http: httpx.Client, account: dict[str, str]) -> dict[str, str]:
    login = http.post("/api/login", json={"login": account["username"], "password": account["password"]})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _feed(http: httpx.Client, auth: dict[str, str]) -> list[tuple[str, str, int]]:
    reply = http.get("/api/feed", headers=auth)
    assert reply.status_code == 200, reply.text
    items = reply.json()["items"]
    return [(i["actor_user_id"], i["review"]["work_id"], i["review"]["rating"]) for i in items]


def _three_flows(http: httpx.Client, unique: str
                 ) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str, int]]]:
    """The design's three flows through the gateway: registration (profile, mail, graph node, feed), a
    review that reaches an interested follower's feed, reading that feed. Returns ann's and ben's
    accounts and ben's feed."""
    ann, ann_account, ann_auth = _register(http, f"ann{unique}")
    ben, ben_account, ben_auth = _register(http, f"ben{unique}")
    assert _feed(http, ben_auth) == []
    assert http.put(f"/api/users/{ann}/follow", headers=ben_auth).status_code == 201
    genre = f"fiction/managed-{unique}"
    created = http.post("/api/works", headers=ann_auth, json={
        "kind": "book", "title": f"Solaris {unique}", "authors": ["Stanisław Lem"], "genre_paths": [genre]})
    assert created.status_code == 201, created.text
    work_id = created.json()["work"]["work_id"]
    # ben's own high rating makes him interested in the genre (the graph learns it from the event)
    assert http.post(f"/api/works/{work_id}/reviews", json={"rating": 5}, headers=ben_auth).status_code == 201
    assert http.put(f"/api/users/{ben}/follow", headers=ann_auth).status_code == 201

    def rated() -> bool:
        reply = http.get(f"/api/works/{work_id}/friends-who-liked", headers=ann_auth)
        return reply.status_code == 200 and bool(reply.json()["ratings"])

    wait_until_sync(rated, 120, "ben's rating in the graph", interval=0.5)
    review = http.post(f"/api/works/{work_id}/reviews", json={"rating": 4, "body": "A sea that thinks."},
                       headers=ann_auth)
    assert review.status_code == 201, review.text
    feed = wait_until_sync(lambda: _feed(http, ben_auth) or None, 120, "ann's review in ben's feed",
                           interval=0.5)
    assert feed == [(ann, work_id, 4)]
    return ann_account, ben_account, feed


def test_helm_install_on_managed_databases_serves_the_three_flows_scales_and_survives_delete_and_recreate(
        cluster: Kube, namespace: str, unique: str, project_images: dict[str, str], databases_image: str,
        tmp_path: Path) -> None:
    """One `helm install` of the platform chart (the operator and the CulturePlatform from values), every
    database managed and every built service enabled: Ready from the databases' real readiness (each
    answers a query); through the gateway Service the three flows work; scaling one read role changes
    that role's pods only. Then the CulturePlatform is deleted and created again under the same name:
    the data volumes and credentials stayed (deleteClaim false, the default), so the services
    reconnect, ann logs in with her password and ben's feed still has the review. `helm uninstall`
    removes the platform and the operator, and leaves the volumes and credentials (documented)."""
    operator_ref = project_images["culture/operator"]
    repo, _, tag = operator_ref.rpartition(":")
    release, name = f"op-{unique}", "cp"
    # helm installs a chart's crds/ only when they are missing and never upgrades them: apply the current
    # ones first (as an upgrade of the chart has to), or a CRD left by an older install refuses new fields
    cluster.run("apply", "--server-side", "--force-conflicts", "-f",
                str(paths.repo_root() / "charts" / "culture-operator" / "crds"))
    spec = platform(name, namespace, project_images["culture/services"], f"{unique}.")["spec"]
    spec["databases"] = {db: {"mode": "managed", "image": databases_image} for db in MANAGED}
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({
        "platform": {"name": name, "spec": spec},
        "culture-operator": {"image": {"repository": repo, "tag": tag}, "watchNamespaces": [namespace],
                             "peeringName": release, "driftSeconds": 10},
    }))
    diagnose = lambda: describe(cluster, namespace)  # noqa: E731
    expected = sum(len(r) for r in BUILT.values()) + len(MANAGED)
    try:
        started = time.monotonic()
        installed = cluster.helm_run("install", release, str(platform_chart(cluster, tmp_path / "charts")),
                                     "--namespace", namespace, "-f", str(values), "--wait", "--timeout", "5m")
        assert f"kubectl wait cp/{name} -n {namespace} --for=condition=Ready" in installed.stdout  # NOTES
        assert cluster.get("kopfpeering", release, "-n", namespace)
        op = cluster.pods(namespace, "app.kubernetes.io/name=culture-operator")
        assert op and all(ready(p) for p in op), diagnose()
        wait_until_sync(lambda: _cp_ready(cluster, namespace, name), 900, "the managed platform Ready",
                        diagnose=diagnose, interval=2.0)
        pods = cluster.pods(namespace, f"{INSTANCE}={name}")
        assert len(pods) == expected and all(ready(p) for p in pods), diagnose()
        say(f"  platform: {expected} pods Ready, cp Ready=True after {time.monotonic() - started:.0f}s")
        assert "True" in cluster.run("get", "cp", name, "-n", namespace).stdout.splitlines()[1]
        dbs = cluster.pods(namespace, f"{INSTANCE}={name},{COMPONENT}=database")
        assert sorted(p["metadata"]["labels"][NAME] for p in dbs) == sorted(MANAGED)
        assert all(c["image"] == databases_image for p in dbs for c in p["spec"]["containers"])
        with httpx.Client(base_url=_gateway(cluster, namespace, name), timeout=30) as http:
            ann_account, ben_account, feed = _three_flows(http, unique)

        # scaling the read side of one service changes that role's pods only
        roles = [(s, r) for s, rs in BUILT.items() for r in rs]
        before = {sr: {p["metadata"]["uid"] for p in _role_pods(cluster, namespace, name, *sr)}
                  for sr in roles}
        service, role = SCALED
        cluster.run("patch", "cp", name, "-n", namespace, "--type=merge",
                    "-p", f'{{"spec":{{"services":{{"{service}":{{"{role}":{{"replicas":2}}}}}}}}}}')
        wait_until_sync(
            lambda: len(pods := _role_pods(cluster, namespace, name, *SCALED)) == 2
            and all(ready(p) for p in pods),
            300, f"two Ready {service} {role} pods", diagnose=diagnose, interval=1.0)
        for sr in roles:
            if sr != SCALED:
                after = {p["metadata"]["uid"] for p in _role_pods(cluster, namespace, name, *sr)}
                assert after == before[sr], f"{sr} pods changed when only {SCALED} was scaled"

        # delete and create again: the operator's finalizer goes, the garbage collector takes the
        # StatefulSets; the volumes and the credentials stay
        cp = cluster.get("cp", name, "-n", namespace)
        passwords = {db: _secret(cluster, namespace, f"{name}-{db}-credentials")["password"]
                     for db in MANAGED}
        cluster.run("delete", "cp", name, "-n", namespace, "--wait=true", "--timeout=180s")
        wait_until_sync(lambda: not cluster.pods(namespace, f"{INSTANCE}={name}"), 300,
                        "the deleted platform's pods to go", diagnose=diagnose, interval=1.0)
        claims = sorted(c["metadata"]["name"] for c in cluster.get("pvc", "-n", namespace)["items"])
        assert claims == sorted(f"data-{name}-{db}-0" for db in MANAGED)
        started = time.monotonic()
        cluster.apply({"apiVersion": cp["apiVersion"], "kind": cp["kind"],
                       "metadata": {"name": name, "namespace": namespace}, "spec": cp["spec"]})
        wait_until_sync(lambda: _cp_ready(cluster, namespace, name), 900, "the re-created platform Ready",
                        diagnose=diagnose, interval=2.0)
        say(f"  platform: Ready again after {time.monotonic() - started:.0f}s")
        for db in MANAGED:
            assert _secret(cluster, namespace, f"{name}-{db}-credentials")["password"] == passwords[db], db
        with httpx.Client(base_url=_gateway(cluster, namespace, name), timeout=30) as http:
            ann_auth = wait_until_sync(lambda: _try_login(http, ann_account), 120, "ann to log in again",
                                       interval=1.0)
            assert _feed(http, _login(http, ben_account)) == feed
            assert http.get("/api/feed", headers=ann_auth).status_code == 200
            _register(http, f"cyd{unique}")  # every step of a new registration, on the kept data

        # `helm uninstall` removes the platform (its pre-delete hook deletes it while the operator still
        # runs, so the operator's finalizer goes), then the operator; the platform's pods go with it
        removed = cluster.helm_run("uninstall", release, "--namespace", namespace, "--wait",
                                   "--timeout", "5m")
        assert "uninstalled" in removed.stdout, removed.stdout
        assert cluster.get("cp", name, "-n", namespace) is None  # gone, not stuck on a finalizer
        wait_until_sync(lambda: not cluster.pods(namespace, f"{INSTANCE}={name}"), 180,
                        "the platform's pods to go", diagnose=diagnose, interval=1.0)
        kept = _secret(cluster, namespace, f"{name}-postgres-credentials")  # with the volumes (deleteClaim)
        assert kept["password"] == passwords["postgres"]
    finally:
        if release in cluster.helm_run("list", "--namespace", namespace, "-q").stdout.split():
            cluster.helm_run("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "3m")


def _try_login(http: httpx.Client, account: dict[str, str]) -> dict[str, str] | None:
    try:
        reply = http.post("/api/login", json={"login": account["username"], "password": account["password"]})
    except httpx.TransportError:
        return None
    return {"Authorization": f"Bearer {reply.json()['access_token']}"} if reply.status_code == 200 else None


def _secret(cluster: Kube, namespace: str, name: str) -> dict[str, str]:
    import base64

    data = cluster.get("secret", name, "-n", namespace)["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}
