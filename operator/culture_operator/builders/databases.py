"""Managed databases: credentials Secret, headless Service and one-replica StatefulSet each."""

from __future__ import annotations

import dataclasses
from typing import Any

from culture_operator.builders.names import Owner, _b64, _meta, database_name, labels, selector_labels
from culture_operator.builders.pods import _container_security, _placement, _pod_security, _resources
from culture_operator.spec import CulturePlatformSpec


@dataclasses.dataclass(frozen=True)
class DatabaseImage:
    """How a managed database runs: image, port, data path and the user it runs as."""

    image: str
    port: int
    data_path: str
    uid: int
    username: str
    read_only_root: bool
    #: extra writable directories (emptyDir) a read-only root filesystem needs
    writable: tuple[str, ...] = ("/tmp",)


DATABASE_IMAGES: dict[str, DatabaseImage] = {
    "postgres": DatabaseImage(
        "postgres:17-alpine",
        5432,
        "/var/lib/postgresql/data",
        70,
        "culture",
        True,
        ("/tmp", "/var/run/postgresql"),
    ),
    "mongo": DatabaseImage("mongo:8.0", 27017, "/data/db", 999, "culture", True),
    # Cassandra and Neo4j rewrite their config files at start, so their root filesystem stays writable.
    "cassandra": DatabaseImage("cassandra:5.0", 9042, "/var/lib/cassandra", 999, "cassandra", False),
    "neo4j": DatabaseImage("neo4j:5-community", 7687, "/data", 7474, "neo4j", False),
    "redis": DatabaseImage("redis:7-alpine", 6379, "/data", 999, "default", True),
}


def database_url(owner: Owner, db: str, password: str) -> str:
    """The connection URL of a managed database (not Cassandra: contact points and a port), as the
    services read it from the Secret's `url`."""
    img = DATABASE_IMAGES[db]
    host = f"{database_name(owner, db)}.{owner.namespace}.svc:{img.port}"
    return {
        "postgres": f"postgresql://{img.username}:{password}@{host}/culture",
        "mongo": f"mongodb://{img.username}:{password}@{host}/?authSource=admin",
        "neo4j": f"bolt://{img.username}:{password}@{host}",
        "redis": f"redis://:{password}@{host}/0",
    }[db]


def build_database_secret(owner: Owner, db: str, password: str) -> dict[str, Any]:
    """The generated credentials of a managed database (`data`, so it compares with what is stored)."""
    img = DATABASE_IMAGES[db]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(owner, f"{owner.name}-{db}-credentials", db, "database"),
        "type": "Opaque",
        "data": {
            "username": _b64(img.username),
            "password": _b64(password),
            # the connection keys the services read (spec.CONNECTION_KEYS, the same as an external one's)
            **(
                {
                    "contactPoints": _b64(f"{database_name(owner, db)}.{owner.namespace}.svc"),
                    "port": _b64(str(img.port)),
                }
                if db == "cassandra"
                else {"url": _b64(database_url(owner, db, password))}
            ),
        },
    }


def build_database_service(owner: Owner, db: str) -> dict[str, Any]:
    """The headless Service giving the database pod a stable DNS name."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner, database_name(owner, db), db, "database"),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(owner, db, "database"),
            "ports": [{"name": db, "port": DATABASE_IMAGES[db].port, "targetPort": db, "protocol": "TCP"}],
        },
    }


def _database_env(owner: Owner, db: str) -> list[dict[str, Any]]:
    secret = f"{owner.name}-{db}-credentials"

    def ref(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": secret, "key": key}}

    if db == "postgres":
        return [
            {"name": "POSTGRES_USER", "valueFrom": ref("username")},
            {"name": "POSTGRES_PASSWORD", "valueFrom": ref("password")},
            {"name": "POSTGRES_DB", "value": "culture"},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ]
    if db == "mongo":
        return [
            {"name": "MONGO_INITDB_ROOT_USERNAME", "valueFrom": ref("username")},
            {"name": "MONGO_INITDB_ROOT_PASSWORD", "valueFrom": ref("password")},
        ]
    if db == "neo4j":
        return [
            {"name": "NEO4J_PASSWORD", "valueFrom": ref("password")},
            {"name": "NEO4J_AUTH", "value": "neo4j/$(NEO4J_PASSWORD)"},
        ]
    if db == "redis":
        return [{"name": "REDIS_PASSWORD", "valueFrom": ref("password")}]
    return [
        {"name": "CASSANDRA_CLUSTER_NAME", "value": owner.name},
        {"name": "MAX_HEAP_SIZE", "value": "1G"},
        {"name": "HEAP_NEWSIZE", "value": "200M"},
    ]


def build_database_statefulset(owner: Owner, spec: CulturePlatformSpec, db: str) -> dict[str, Any]:
    """One-replica StatefulSet of a managed database with a PVC of the spec's size."""
    dbspec = spec.database(db)
    img = DATABASE_IMAGES[db]
    lbl = labels(owner, db, "database")
    mounts = [{"name": "data", "mountPath": img.data_path}]
    volumes: list[dict[str, Any]] = []
    for i, path in enumerate(img.writable):
        mounts.append({"name": f"scratch-{i}", "mountPath": path})
        volumes.append({"name": f"scratch-{i}", "emptyDir": {}})
    container: dict[str, Any] = {
        "name": db,
        "image": dbspec.image or img.image,
        "ports": [{"name": db, "containerPort": img.port, "protocol": "TCP"}],
        "env": _database_env(owner, db),
        "readinessProbe": {"tcpSocket": {"port": db}, "periodSeconds": 5, "initialDelaySeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": db}, "periodSeconds": 10, "initialDelaySeconds": 60},
        "securityContext": _container_security(img.read_only_root),
        "volumeMounts": mounts,
    }
    if db == "redis":
        container["args"] = ["redis-server", "--requirepass", "$(REDIS_PASSWORD)", "--appendonly", "yes"]
    resources = _resources(dbspec.resources)
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(owner, database_name(owner, db), db, "database"),
        "spec": {
            "serviceName": database_name(owner, db),
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(owner, db, "database")},
            "template": {
                "metadata": {"labels": lbl},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(img.uid),
                    "containers": [container],
                    "volumes": volumes,
                    **_placement(spec),
                },
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": dbspec.storage}},
                    },
                }
            ],
        },
    }
