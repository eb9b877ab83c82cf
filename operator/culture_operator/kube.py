"""The one module that talks to the Kubernetes API: list, server-side apply, prune, events, secrets.

Synchronous (the official client); the async handlers call it through `asyncio.to_thread`. Every
write goes through `_request`, which counts writes, so a benchmark can prove a no-op reconcile
writes nothing.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from kubernetes import client, config

from culture_operator.builders import STRIMZI_API_VERSION, child_key, owner_selector
from culture_operator.spec import GROUP, KIND, PLURAL, VERSION

FIELD_MANAGER = "culture-operator"
#: concurrent API requests (lists, server-side applies) of the whole operator, every platform together:
#: the API server does the work; measured on the local one, 16 in flight applied one platform's children
#: faster than 8 (bench/operator_scale.py baseline)
APPLY_WORKERS = 16


@dataclasses.dataclass(frozen=True)
class KindInfo:
    """Where one kind of child lives in the API."""

    api_version: str
    kind: str
    plural: str

    def collection(self, namespace: str) -> str:
        """The namespaced collection path."""
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{base}/namespaces/{quote(namespace)}/{self.plural}"


#: Every kind of child, in apply order; deletion (pruning) runs in reverse.
CHILD_KINDS: tuple[KindInfo, ...] = (
    KindInfo("v1", "ConfigMap", "configmaps"),
    KindInfo("v1", "Secret", "secrets"),
    KindInfo("v1", "Service", "services"),
    KindInfo("apps/v1", "StatefulSet", "statefulsets"),
    KindInfo(STRIMZI_API_VERSION, "Kafka", "kafkas"),
    KindInfo(STRIMZI_API_VERSION, "KafkaNodePool", "kafkanodepools"),
    KindInfo(STRIMZI_API_VERSION, "KafkaTopic", "kafkatopics"),
    KindInfo("apps/v1", "Deployment", "deployments"),
    KindInfo("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    KindInfo("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
)
KINDS_BY_KEY = {(k.api_version, k.kind): k for k in CHILD_KINDS}
#: per-reconcile request counts ({"reads": n, "writes": n}); set by the caller, shared with its threads
REQUEST_COUNTS: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "culture_operator_request_counts", default=None
)
PLATFORM_KIND = KindInfo(f"{GROUP}/{VERSION}", KIND, PLURAL)


class KubeError(RuntimeError):
    """An API call failed; carries the HTTP status and the server's message."""

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {message}")
        self.status = status
        self.message = message


def load_api_client() -> client.ApiClient:
    """An API client: in-cluster credentials when running in a pod, else KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = APPLY_WORKERS + 8  # requests run in parallel threads; one shared pool
    return client.ApiClient(cfg)


class Kube:
    """Thin, counted access to the API server for the operator's children."""

    #: the same Event (object, type, reason, message) is written at most once per this many seconds;
    #: repeats in between are counted and the count is written with the next one
    event_interval = 30.0

    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or load_api_client()
        self._lock = threading.Lock()
        self.writes = 0
        self.reads = 0
        #: Event name -> (count written, repeats not written yet, monotonic time of the last write)
        self._events: dict[str, tuple[int, int, float]] = {}

    # -- transport -----------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Iterable[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        kind = "reads" if method == "GET" else "writes"
        with self._lock:
            setattr(self, kind, getattr(self, kind) + 1)
            counts = REQUEST_COUNTS.get()
            if counts is not None:
                counts[kind] += 1
        headers = {"Accept": "application/json", "Content-Type": content_type}
        ser = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(*ser, _request_timeout=30)
        data = resp.read()
        if resp.status == 404 and method in ("GET", "DELETE"):
            return None
        if not 200 <= resp.status < 300:
            try:
                message = json.loads(data).get("message", data.decode(errors="replace"))
            except ValueError:
                message = data.decode(errors="replace")
            raise KubeError(resp.status, method, path, message)
        return json.loads(data) if data else {}

    # -- children ------------------------------------------------------------------------------------

    def list_children(self, kind: KindInfo, namespace: str, platform: str) -> list[dict[str, Any]] | None:
        """The children of one kind carrying the platform's labels; None when the kind is not served."""
        try:
            out = self._request(
                "GET", kind.collection(namespace), query=[("labelSelector", owner_selector(platform))]
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        if out is None:  # the collection itself 404s: the CRD is not installed
            return None
        items = out.get("items", [])
        for item in items:  # list items come without apiVersion/kind
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items

    def get(self, kind: KindInfo, namespace: str, name: str) -> dict[str, Any] | None:
        """One object, or None."""
        return self._request("GET", f"{kind.collection(namespace)}/{quote(name)}")

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply with the operator's field manager (force: the operator owns these fields)."""
        kind = KINDS_BY_KEY[(manifest["apiVersion"], manifest["kind"])]
        meta = manifest["metadata"]
        path = f"{kind.collection(meta['namespace'])}/{quote(meta['name'])}"
        out = self._request(
            "PATCH",
            path,
            body=dict(manifest),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true"), ("fieldValidation", "Strict")],
            content_type="application/apply-patch+yaml",
        )
        return out or {}

    def delete(self, manifest: Mapping[str, Any]) -> None:
        """Delete one child (only that exact object: uid precondition), in the background."""
        kind = KINDS_BY_KEY[(manifest["apiVersion"], manifest["kind"])]
        meta = manifest["metadata"]
        self._request(
            "DELETE",
            f"{kind.collection(meta['namespace'])}/{quote(meta['name'])}",
            body={
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "propagationPolicy": "Background",
                "preconditions": {"uid": meta["uid"]},
            },
        )

    def delete_platform(self, namespace: str, name: str) -> bool:
        """Delete a CulturePlatform (its children follow: owner references); False if it was gone."""
        return self._request("DELETE", f"{PLATFORM_KIND.collection(namespace)}/{quote(name)}",
                             body={"kind": "DeleteOptions", "apiVersion": "v1",
                                   "propagationPolicy": "Background"}) is not None

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's base64 data, or None when it does not exist."""
        obj = self._request("GET", f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}")
        return None if obj is None else (obj.get("data") or {})

    # -- the CulturePlatform itself ------------------------------------------------------------------

    def post_event(self, owner: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event on the CulturePlatform (what `kubectl describe cp` shows), aggregated as
        client-go's event recorder does: the same object, type, reason and message make ONE Event
        whose `count` and `lastTimestamp` grow, written at most once per `event_interval` seconds
        (repeats in between are counted and written with the next write)."""
        meta = owner["metadata"]
        message = message[:1024]
        digest = hashlib.sha256("\0".join((meta["uid"], event_type, reason, message)).encode()).hexdigest()
        name = f"{meta['name']}.{digest[:16]}"
        path = f"/api/v1/namespaces/{quote(meta['namespace'])}/events"
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            written, pending, at = self._events.get(name, (0, 0, -self.event_interval))
            if time.monotonic() - at < self.event_interval:
                self._events[name] = (written, pending + 1, at)
                return
            self._events[name] = (written, 0, time.monotonic())  # the repeats go out with this write
        count = written + pending + 1
        if written:
            try:
                self._request("PATCH", f"{path}/{quote(name)}", body={"count": count, "lastTimestamp": now},
                              content_type="application/merge-patch+json")
            except KubeError as exc:
                if exc.status != 404:  # gone (events expire after an hour): written anew below
                    raise
                count = 1
            else:
                self._remember(name, count)
                return
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": event_type,
            "reason": reason,
            "message": message,
            "source": {"component": FIELD_MANAGER},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": count,
        }
        try:
            self._request("POST", path, body=body)
        except KubeError as exc:
            if exc.status != 409:
                raise
            # written by an earlier run of the operator: go on counting from its count
            existing = self._request("GET", f"{path}/{quote(name)}") or {}
            count = int(existing.get("count") or 1) + count
            self._request("PATCH", f"{path}/{quote(name)}", body={"count": count, "lastTimestamp": now},
                          content_type="application/merge-patch+json")
        self._remember(name, count)

    def _remember(self, name: str, count: int) -> None:
        with self._lock:
            _, pending, at = self._events.get(name, (0, 0, time.monotonic()))
            self._events[name] = (count, pending, at)  # repeats counted during the write stay pending
            if len(self._events) > 10_000:  # bounded: forget the oldest half
                for key in sorted(self._events, key=lambda k: self._events[k][2])[:5_000]:
                    del self._events[key]

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch the CulturePlatform's status subresource."""
        self._request(
            "PATCH",
            f"{PLATFORM_KIND.collection(namespace)}/{quote(name)}/status",
            body={"status": dict(status)},
            content_type="application/merge-patch+json",
        )


def index_children(items: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """Live children keyed like the desired ones."""
    return {child_key(i): i for i in items}
