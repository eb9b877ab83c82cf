#!/opt/culture-db/bin/python
"""culture-db: run one managed database of the local node's image, as its official image would.

usage: culture-db                      run the database named by $CULTURE_DATABASE
       culture-db PROGRAM [ARGS...]    redis-server ... runs Redis; mongod ... runs the MongoDB server
       culture-db ready                exit 0 once the database answers a query (the readiness probe)
       culture-db --help

It reads what the official images read, so the operator's StatefulSets run either image:
  postgres   POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA (initdb on the first start)
  redis      its arguments (redis-server --requirepass ...)
  mongo      MONGO_INITDB_ROOT_USERNAME / _PASSWORD (the user is made on the first start, then the
             server runs with --auth); SecantusDB is always the primary of a one-member replica set,
             so mongod's --replSet / --keyFile arguments need nothing more here
  cassandra  MAX_HEAP_SIZE, HEAP_NEWSIZE, CASSANDRA_CLUSTER_NAME, POD_IP (listen and broadcast address)
  neo4j      NEO4J_PASSWORD (set on the first start of a new store), POD_IP (advertised address),
             NEO4J_server_memory_heap_max__size, NEO4J_server_memory_pagecache_size
The JVM options and Cassandra's configuration come from the local stack's recipes
(/opt/culture-db/recipe.json, written when the image is built).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

RECIPE = Path("/opt/culture-db/recipe.json")
POD_IP_PLACEHOLDER = "@POD_IP@"


def say(message: str) -> None:
    print(f"culture-db: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], **kwargs: Any) -> None:
    say("$ " + " ".join(argv))
    subprocess.run(argv, check=True, **kwargs)


def exec_(argv: list[str], env: dict[str, str] | None = None) -> NoReturn:
    say("exec " + " ".join(a if "password" not in a.lower() else "***" for a in argv))
    os.execvpe(argv[0], argv, env or os.environ)


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise SystemExit(f"culture-db: {name} is not set")
    return value


def pod_ip() -> str:
    return os.environ.get("POD_IP") or socket.gethostbyname(socket.gethostname())


# -- the databases ---------------------------------------------------------------------------------


def postgres() -> NoReturn:
    data = Path(env("PGDATA", "/var/lib/postgresql/data"))
    user, database = env("POSTGRES_USER", "postgres"), env("POSTGRES_DB", env("POSTGRES_USER", "postgres"))
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        pwfile = Path("/tmp/culture-db-pw")
        pwfile.write_text(env("POSTGRES_PASSWORD") + "\n")
        try:
            run(["initdb", "-D", str(data), "-U", user, f"--pwfile={pwfile}", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
        finally:
            pwfile.unlink(missing_ok=True)
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write("host all all all scram-sha-256\n")
        if database != "postgres":
            run(["postgres", "--single", "-D", str(data), "postgres"],
                input=f'CREATE DATABASE "{database}";\n'.encode(), stdout=subprocess.DEVNULL)
    exec_(["postgres", "-D", str(data), "-c", "listen_addresses=*", "-c",
           "unix_socket_directories=/var/run/postgresql"])


def mongo() -> NoReturn:
    data = Path("/data/db")
    data.mkdir(parents=True, exist_ok=True)
    user, password = env("MONGO_INITDB_ROOT_USERNAME", ""), env("MONGO_INITDB_ROOT_PASSWORD", "")
    marker = data / ".culture-db-users"
    if user and not marker.exists():
        # as the official image does: start without authentication on loopback, make the root user,
        # stop; from then on authentication is required
        conf = _secantus_config(data, "127.0.0.1", 27099, auth=False)
        server = subprocess.Popen(["secantusd-py", "--config", str(conf)])
        try:
            import pymongo

            client: Any = pymongo.MongoClient("mongodb://127.0.0.1:27099/?directConnection=true",
                                              serverSelectionTimeoutMS=120_000)
            client.admin.command("createUser", user, pwd=password, roles=["root"])
            client.close()
            marker.write_text(user + "\n")
        finally:
            server.terminate()
            server.wait(60)
    conf = _secantus_config(data, "0.0.0.0", 27017, auth=bool(user))
    exec_(["secantusd-py", "--config", str(conf)])


def _secantus_config(data: Path, host: str, port: int, *, auth: bool) -> Path:
    conf = Path(f"/tmp/secantusd-{port}.toml")
    conf.write_text(f'[server]\nhost = "{host}"\nport = {port}\nstorage_path = "{data}"\n'
                    f'log_level = "INFO"\nauth = {str(auth).lower()}\n[storage]\ncache_size = "256M"\n')
    return conf


def cassandra(recipe: dict[str, Any]) -> NoReturn:
    heap, new = env("MAX_HEAP_SIZE", "512M"), env("HEAP_NEWSIZE", "128M")
    ip = pod_ip()
    conf = Path(recipe["conf"])
    conf.mkdir(parents=True, exist_ok=True)
    Path(recipe["logs"]).mkdir(parents=True, exist_ok=True)
    config = json.loads(json.dumps(recipe["config"]).replace(POD_IP_PLACEHOLDER, ip))
    config["cluster_name"] = env("CASSANDRA_CLUSTER_NAME", config["cluster_name"])
    for path in [*config["data_file_directories"], config["commitlog_directory"],
                 config["saved_caches_directory"], config["hints_directory"], config["cdc_raw_directory"]]:
        Path(path).mkdir(parents=True, exist_ok=True)
    # JSON is YAML: cassandra.yaml needs no YAML writer
    (conf / "cassandra.yaml").write_text(json.dumps(config, indent=1))
    (conf / "logback.xml").write_text(recipe["logback"])
    exec_(["java", f"-Xms{heap}", f"-Xmx{heap}", f"-Xmn{new}", *recipe["jvm"], "-cp", recipe["classpath"],
           recipe["main"]])


def neo4j(recipe: dict[str, Any]) -> NoReturn:
    heap = env("NEO4J_server_memory_heap_max__size", "512m")
    pagecache = env("NEO4J_server_memory_pagecache_size", "128m")
    env("NEO4J_PASSWORD")  # the launcher sets it on the first start of a new store
    exec_(["java", f"-Xms{heap}", f"-Xmx{heap}", *recipe["jvm"], "-cp", recipe["classpath"], recipe["main"],
           "--home=/data", "--bolt=0.0.0.0:7687", f"--advertised={pod_ip()}:7687",
           f"--pagecache={pagecache}"])


# -- readiness -------------------------------------------------------------------------------------


def ready(db: str) -> bool:
    """One query, with the database's Python driver (cheaper than a JVM or Node.js shell per probe)."""
    if db == "cassandra":
        from cassandra.cluster import Cluster

        cluster = Cluster([pod_ip()], port=9042, connect_timeout=10, control_connection_timeout=10)
        try:
            return cluster.connect().execute("SELECT release_version FROM system.local").one() is not None
        finally:
            cluster.shutdown()
    if db == "neo4j":
        from neo4j import GraphDatabase

        with GraphDatabase.driver("bolt://127.0.0.1:7687", auth=("neo4j", env("NEO4J_PASSWORD")),
                                  connection_timeout=10) as driver:
            return driver.execute_query("RETURN 1 AS one").records[0]["one"] == 1
    if db == "mongo":
        import pymongo

        client: Any = pymongo.MongoClient("127.0.0.1", 27017, directConnection=True,
                                          username=env("MONGO_INITDB_ROOT_USERNAME", "") or None,
                                          password=env("MONGO_INITDB_ROOT_PASSWORD", "") or None,
                                          serverSelectionTimeoutMS=10_000)
        with client:
            return bool(client.admin.command("hello").get("isWritablePrimary"))
    raise SystemExit(f"culture-db ready: no check for {db!r} (its client is in the image: psql, redis-cli)")


def main(argv: list[str]) -> None:
    if argv[:1] in (["--help"], ["-h"]):
        print(__doc__)
        return
    db = os.environ.get("CULTURE_DATABASE", "")
    if argv[:1] == ["ready"]:
        try:
            ok = ready(db)
        except Exception as exc:  # noqa: BLE001 - a probe reports any failure as "not ready", it does not crash
            say(f"{db} is not ready: {exc!r}")
            ok = False
        sys.exit(0 if ok else 1)
    if argv[:1] == ["mongod"] or (not argv and db == "mongo"):
        mongo()
    if argv:
        if shutil.which(argv[0]) is None:
            raise SystemExit(f"culture-db: no program {argv[0]!r} in this image; see culture-db --help")
        exec_(argv)
    recipe = json.loads(RECIPE.read_text())
    say(f"starting {db or '(CULTURE_DATABASE is not set)'}")
    if db == "postgres":
        postgres()
    if db == "cassandra":
        cassandra(recipe["cassandra"])
    if db == "neo4j":
        neo4j(recipe["neo4j"])
    raise SystemExit(f"culture-db: CULTURE_DATABASE must be one of postgres, redis, mongo, cassandra, neo4j "
                     f"(got {db!r}); see culture-db --help")


if __name__ == "__main__":
    main(sys.argv[1:])
