"""The stack's ports: every server on 127.0.0.1, never on its default port, so a system-wide
server of the same kind can run beside it."""

from __future__ import annotations

HOST = "127.0.0.1"

POSTGRES = 15432
REDIS = 16379
KAFKA = 19092
KAFKA_CONTROLLER = 19093
CASSANDRA = 19042
CASSANDRA_STORAGE = 17000
NEO4J_BOLT = 17687
NEO4J_HTTP = 17474
MONGO = 17017
ETCD = 12379
ETCD_PEER = 12380
KUBE_APISERVER = 16443
KUBE_CONTROLLER_MANAGER = 10257
SMTP = 12525
