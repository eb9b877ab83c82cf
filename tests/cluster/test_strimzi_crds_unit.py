"""The Strimzi CRD generation step: the generator's command line and the cache (no Maven, no Java)."""

from __future__ import annotations

from pathlib import Path

import pytest

from culture_stack.cluster import strimzi_crds
from culture_stack.server import Context

pytestmark = pytest.mark.unit


def test_generator_argv_is_strimzis_own_invocation(tmp_path: Path) -> None:
    argv = strimzi_crds.generator_argv(Path("/jdk/bin/java"), tmp_path / "lib", tmp_path / "out")
    assert argv[:4] == ["/jdk/bin/java", "-cp", f"{tmp_path / 'lib'}/*",
                        "io.strimzi.crdgenerator.CrdGenerator"]
    # the options of Strimzi's api/pom.xml: v1 only, its labels, YAML output
    for opt, value in (("--crd-api-version", "v1"), ("--api-versions", "v1"), ("--storage-version", "v1"),
                       ("--target-kube", "1.16+")):
        assert argv[argv.index(opt) + 1] == value
    assert "--yaml" in argv
    pairs = dict(a.split("=", 1) for a in argv if "=" in a)
    for kind in ("kafka.Kafka", "nodepool.KafkaNodePool", "topic.KafkaTopic", "user.KafkaUser"):
        assert f"io.strimzi.api.kafka.model.{kind}" in pairs
    assert all(Path(p).parent == tmp_path / "out" for p in pairs.values())


def test_a_complete_cache_is_used_without_maven_or_java(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Context(state=tmp_path / "state", cache=tmp_path / "cache")
    out = strimzi_crds.folder(ctx)
    out.mkdir(parents=True)
    for name in strimzi_crds.CRDS.values():
        (out / name).write_text("kind: CustomResourceDefinition\n")
    (out / ".complete").write_text("1.2.0\n")

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(strimzi_crds.tools, "maven_classpath", boom)
    monkeypatch.setattr(strimzi_crds.process, "run", boom)
    assert strimzi_crds.generate(ctx) == [out / n for n in strimzi_crds.CRDS.values()]
