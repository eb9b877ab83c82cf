"""Managed databases: credentials Secret, headless Service and one-replica StatefulSet each.

The pods run either the official images (the defaults, e.g. on kind) or the local node's
`127.0.0.1:5000/culture/databases` image (`culture cluster images`), which takes the same
environment, arguments, user and volumes. Readiness means "answers a query": the official image's
own client (psql, redis-cli, cqlsh, cypher-shell, mongosh), or `culture-db ready` where the image has
it (the local image: Python drivers instead of the JVM and Node.js shells).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

from culture_operator.builders.names import (
    Owner,
    _b64,
    _meta,
    credentials_secret_name,
    database_name,
    labels,
    selector_labels,
)
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
    #: a shell command that succeeds once the server answers a query, with the official image's client
    ready: str = ""


DATABASE_IMAGES: dict[str, DatabaseImage] = {
    "postgres": DatabaseImage(
        "postgres:17-alpine",
        5432,
        "/var/lib/postgresql/data",
        70,
        "culture",
        True,
        ("/tmp", "/var/run/postgresql"),
        ready='PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -U "$POSTGRES_USER" -d culture '
        '-tAc "SELECT 1" | grep -qx 1',
    ),
    "mongo": DatabaseImage(
        "mongo:8.0", 27017, "/data/db", 999, "culture", True, ("/tmp", "/run/mongo"),
        # the official image's first start makes the user; this probe then initiates the one-member
        # replica set once and is ready when this member is the writable primary
        ready='mongosh --quiet -u "$MONGO_INITDB_ROOT_USERNAME" -p "$MONGO_INITDB_ROOT_PASSWORD" '
        "--authenticationDatabase admin --eval "
        "'try { rs.status() } catch (e) { rs.initiate({_id: \"rs0\", members: [{_id: 0, host: \"'"
        "\"$MONGO_MEMBER\"'\"}]}) }; quit(db.hello().isWritablePrimary ? 0 : 1)'",
    ),
    # Cassandra and Neo4j rewrite their config files at start, so their root filesystem stays writable.
    "cassandra": DatabaseImage(
        "cassandra:5.0", 9042, "/var/lib/cassandra", 999, "cassandra", False,
        ready='cqlsh -e "SELECT release_version FROM system.local"',
    ),
    "neo4j": DatabaseImage(
        "neo4j:5-community", 7687, "/data", 7474, "neo4j", False,
        ready='cypher-shell -a bolt://127.0.0.1:7687 -u neo4j -p "$NEO4J_PASSWORD" "RETURN 1"',
    ),
    "redis": DatabaseImage(
        "redis:7-alpine", 6379, "/data", 999, "default", True,
        ready='redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -qx PONG',
    ),
}

#: the one-member replica set of a managed MongoDB (the URL connects directly to its member)
MONGO_REPLICA_SET = "rs0"
MONGO_KEYFILE = "/run/mongo/keyfile"
#: heap sizes that fit a laptop (and the 2-core node here) beside the rest of the platform
CASSANDRA_HEAP = ("512M", "128M")  # MAX_HEAP_SIZE, HEAP_NEWSIZE
NEO4J_HEAP = "512m"
NEO4J_PAGECACHE = "128m"
#: set on every managed database container: the local image's entrypoint runs this database
#: (the official images ignore it)
DATABASE_CHOICE_ENV = "CULTURE_DATABASE"
#: an annotation of the credentials Secret: whether it goes with the CulturePlatform (deleteClaim)
DELETE_WITH_PLATFORM = "platform.culture.dev/delete-with-platform"


#: the databases whose official client is a JVM or Node.js shell: the local image answers with its
#: Python drivers instead (`culture-db ready`)
DRIVER_READY = ("cassandra", "neo4j", "mongo")


def readiness_command(db: str) -> list[str]:
    """The readiness probe: `culture-db ready` where the image has it (and the database is one of
    DRIVER_READY), else the official client (psql and redis-cli are in both kinds of image)."""
    own = "if command -v culture-db >/dev/null 2>&1; then exec culture-db ready; fi; "
    own = own if db in DRIVER_READY else ""
    return ["sh", "-c", own + DATABASE_IMAGES[db].ready]


def mongo_keyfile(password: str) -> str:
    """The replica set's internal key (mongod needs one when authorization is on): derived from the
    password, so the builders stay pure and the key lives as long as the credentials."""
    return base64.b64encode(hashlib.sha512(b"culture-mongo-keyfile:" + password.encode()).digest()).decode()


def database_url(owner: Owner, db: str, password: str) -> str:
    """The connection URL of a managed database (not Cassandra: contact points and a port), as the
    services read it from the Secret's `url`."""
    img = DATABASE_IMAGES[db]
    host = f"{database_name(owner, db)}.{owner.namespace}.svc:{img.port}"
    return {
        "postgres": f"postgresql://{img.username}:{password}@{host}/culture",
        # directConnection: the one member, whatever host name the replica set advertises
        "mongo": f"mongodb://{img.username}:{password}@{host}/?authSource=admin&directConnection=true",
        "neo4j": f"bolt://{img.username}:{password}@{host}",
        "redis": f"redis://:{password}@{host}/0",
    }[db]


def build_database_secret(owner: Owner, db: str, password: str, *, delete_with_platform: bool = False
                          ) -> dict[str, Any]:
    """The generated credentials of a managed database (`data`, so it compares with what is stored).

    Unless the database's deleteClaim says otherwise, the Secret has no owner: it outlives the
    CulturePlatform like the data volume it opens, and a CulturePlatform re-created under the same
    name takes its password again."""
    img = DATABASE_IMAGES[db]
    meta = _meta(owner, credentials_secret_name(owner, db), db, "database",
                 annotations={DELETE_WITH_PLATFORM: str(delete_with_platform).lower()})
    if not delete_with_platform:
        del meta["ownerReferences"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {
            "username": _b64(img.username),
            "password": _b64(password),
            **({"keyfile": _b64(mongo_keyfile(password))} if db == "mongo" else {}),
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
            # the pod's own name resolves before it is ready (MongoDB's member finds itself by it)
            "publishNotReadyAddresses": True,
            "selector": selector_labels(owner, db, "database"),
            "ports": [{"name": db, "port": DATABASE_IMAGES[db].port, "targetPort": db, "protocol": "TCP"}],
        },
    }


#: the pod's address (the local image's Cassandra and Neo4j advertise it to clients)
_POD_IP = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def _member(owner: Owner, db: str) -> str:
    """host:port of the StatefulSet's one pod, by its stable name under the headless Service."""
    name = database_name(owner, db)
    return f"{name}-0.{name}.{owner.namespace}.svc:{DATABASE_IMAGES[db].port}"


def _database_env(owner: Owner, db: str) -> list[dict[str, Any]]:
    return [{"name": DATABASE_CHOICE_ENV, "value": db}, *_server_env(owner, db)]


def _server_env(owner: Owner, db: str) -> list[dict[str, Any]]:
    secret = credentials_secret_name(owner, db)

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
            {"name": "MONGO_MEMBER", "value": _member(owner, db)},
        ]
    if db == "neo4j":
        return [
            {"name": "NEO4J_PASSWORD", "valueFrom": ref("password")},
            {"name": "NEO4J_AUTH", "value": "neo4j/$(NEO4J_PASSWORD)"},
            {"name": "NEO4J_server_memory_heap_initial__size", "value": NEO4J_HEAP},
            {"name": "NEO4J_server_memory_heap_max__size", "value": NEO4J_HEAP},
            {"name": "NEO4J_server_memory_pagecache_size", "value": NEO4J_PAGECACHE},
            _POD_IP,
        ]
    if db == "redis":
        return [{"name": "REDIS_PASSWORD", "valueFrom": ref("password")}]
    return [
        {"name": "CASSANDRA_CLUSTER_NAME", "value": owner.name},
        {"name": "MAX_HEAP_SIZE", "value": CASSANDRA_HEAP[0]},
        {"name": "HEAP_NEWSIZE", "value": CASSANDRA_HEAP[1]},
        _POD_IP,
    ]


def _args(db: str) -> list[str] | None:
    """The server's arguments (both kinds of image take them): Redis' password and persistence, MongoDB
    as the one member of a replica set with its internal key and a small cache."""
    if db == "redis":
        return ["redis-server", "--requirepass", "$(REDIS_PASSWORD)", "--appendonly", "yes", "--dir", "/data"]
    if db == "mongo":
        return ["mongod", "--replSet", MONGO_REPLICA_SET, "--bind_ip_all", "--keyFile", MONGO_KEYFILE,
                "--wiredTigerCacheSizeGB", "0.25"]
    return None


def _keyfile_init(image: str, img: DatabaseImage) -> dict[str, Any]:
    """mongod reads its key only from a file of its own user with mode 0400; a Secret volume is
    root's, so this init container copies it into the pod's scratch volume as the database user."""
    return {
        "name": "keyfile",
        "image": image,
        "command": ["sh", "-c", f"cp /secret/keyfile {MONGO_KEYFILE} && chmod 0400 {MONGO_KEYFILE}"],
        "securityContext": _container_security(img.read_only_root),
        "volumeMounts": [{"name": "credentials", "mountPath": "/secret", "readOnly": True},
                         {"name": f"scratch-{img.writable.index('/run/mongo')}", "mountPath": "/run/mongo"}],
    }


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
    image = dbspec.image or img.image
    container: dict[str, Any] = {
        "name": db,
        "image": image,
        "ports": [{"name": db, "containerPort": img.port, "protocol": "TCP"}],
        "env": _database_env(owner, db),
        # a JVM database on a busy node may take minutes to open its port: liveness waits for this
        "startupProbe": {"tcpSocket": {"port": db}, "periodSeconds": 5, "failureThreshold": 120},
        "readinessProbe": {"exec": {"command": readiness_command(db)}, "periodSeconds": 10,
                           "timeoutSeconds": 20, "failureThreshold": 3},
        "livenessProbe": {"tcpSocket": {"port": db}, "periodSeconds": 10, "failureThreshold": 6},
        "securityContext": _container_security(img.read_only_root),
        "volumeMounts": mounts,
    }
    args = _args(db)
    if args:
        container["args"] = args
    resources = _resources(dbspec.resources)
    if resources:
        container["resources"] = resources
    init: list[dict[str, Any]] = []
    if db == "mongo":
        volumes.append({"name": "credentials", "secret": {"secretName": credentials_secret_name(owner, db),
                                                          "items": [{"key": "keyfile", "path": "keyfile"}]}})
        init.append(_keyfile_init(image, img))
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(owner, database_name(owner, db), db, "database"),
        "spec": {
            "serviceName": database_name(owner, db),
            "replicas": 1,
            # deleteClaim: the data volume goes with the StatefulSet (and so with the CulturePlatform)
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete" if dbspec.deleteClaim else "Retain",
                "whenScaled": "Retain",
            },
            "selector": {"matchLabels": selector_labels(owner, db, "database")},
            "template": {
                "metadata": {"labels": lbl},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(img.uid),
                    **({"initContainers": init} if init else {}),
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
