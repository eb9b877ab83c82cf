"""Strimzi's REAL CustomResourceDefinitions, generated from its published API model.

Strimzi's own build makes its CRD files by running its CRD generator (`io.strimzi:crd-generator`) over
the classes of its API model (`io.strimzi:api`): see `api/pom.xml` of strimzi-kafka-operator, the
`exec-maven-plugin` execution that writes `packaging/install/cluster-operator/04x-Crd-*.yaml`. Both
artifacts are on Maven Central, so the same invocation (same arguments, same classes) here gives the
very files Strimzi releases. They are cached under `<cache>/strimzi-crds/<version>/`; the e2e tests
install them instead of a hand-written fixture, so the operator's Strimzi output is validated by the
API server against Strimzi's real schema.

`culture cluster up --images` (the `e2e builds` phase of `make test`) generates them, so no test's
timeout covers a cold Maven fetch; `culture cluster strimzi-crds` does only this and prints the folder.
"""

from __future__ import annotations

from pathlib import Path

from culture_stack import phases, process, tools
from culture_stack.server import Context, StackError, say

STRIMZI_VERSION = "1.2.0"
#: the CRD generator and the API classes of Strimzi 1.2 are Java 21 bytecode (class file 65)
JAVA_MIN = 21
GENERATOR = "io.strimzi.crdgenerator.CrdGenerator"
#: the arguments of Strimzi's api/pom.xml `generate-crds` execution (v1 only, as Strimzi 1.x serves)
GENERATOR_ARGS = (
    "--label", "app:strimzi",
    "--label", "strimzi.io/crd-install:true",
    "--target-kube", "1.16+",
    "--crd-api-version", "v1",
    "--api-versions", "v1",
    "--storage-version", "v1",
    "--yaml",
)
#: API class -> file name, as Strimzi names them in packaging/install/cluster-operator/. The kinds the
#: operator writes (Kafka, KafkaNodePool, KafkaTopic), KafkaUser (the next the platform may need) and
#: StrimziPodSet (what the Strimzi cluster operator makes from a node pool).
CRDS = {
    "io.strimzi.api.kafka.model.kafka.Kafka": "040-Crd-kafka.yaml",
    "io.strimzi.api.kafka.model.podset.StrimziPodSet": "042-Crd-strimzipodset.yaml",
    "io.strimzi.api.kafka.model.topic.KafkaTopic": "043-Crd-kafkatopic.yaml",
    "io.strimzi.api.kafka.model.user.KafkaUser": "044-Crd-kafkauser.yaml",
    "io.strimzi.api.kafka.model.nodepool.KafkaNodePool": "045-Crd-kafkanodepool.yaml",
}
#: the CRD objects' names, for `kubectl wait --for=condition=Established`
CRD_NAMES = ("kafkas.kafka.strimzi.io", "strimzipodsets.core.strimzi.io", "kafkatopics.kafka.strimzi.io",
             "kafkausers.kafka.strimzi.io", "kafkanodepools.kafka.strimzi.io")


def folder(ctx: Context, version: str = STRIMZI_VERSION) -> Path:
    """Where the generated CRD files of one Strimzi version live (in the cache, outside the repo)."""
    return ctx.tool("strimzi-crds", version)


def generator_argv(java: Path, lib: Path, out: Path) -> list[str]:
    """The java command line that writes every file of CRDS into `out` (pure, for the unit test)."""
    return [str(java), "-cp", f"{lib}/*", GENERATOR, *GENERATOR_ARGS,
            *(f"{cls}={out / name}" for cls, name in CRDS.items())]


def generate(ctx: Context, version: str = STRIMZI_VERSION) -> list[Path]:
    """The CRD files of Strimzi `version`: generated once (Maven fetch + generator run), then cached.

    Returns the files in CRDS order. A marker written after a complete run makes later calls instant.
    """
    out = folder(ctx, version)
    files = [out / name for name in CRDS.values()]
    marker = out / ".complete"
    if marker.exists() and all(f.exists() for f in files):
        return files
    say(f"==> Strimzi {version} CRDs: generating them from io.strimzi:api with io.strimzi:crd-generator "
        "(first time only)")
    with phases.step(f"strimzi {version} CRDs"):
        lib = tools.maven_classpath(
            ctx, f"strimzi-crd-generator-{version}",
            [f"io.strimzi:api:{version}", f"io.strimzi:crd-generator:{version}"],
        )
        java = tools.java_home(JAVA_MIN) / "bin" / "java"
        out.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        say(f"  running {GENERATOR} for {', '.join(c.rsplit('.', 1)[1] for c in CRDS)}...")
        process.run(generator_argv(java, lib, out), what=f"java {GENERATOR} ({len(CRDS)} CRDs)",
                    log=out / "generate.log")
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise StackError(f"the Strimzi CRD generator did not write {missing} (log: {out}/generate.log)")
        marker.write_text(version + "\n")
    say(f"  Strimzi {version} CRDs in {out}")
    return files
