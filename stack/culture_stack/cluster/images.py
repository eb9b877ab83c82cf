"""Images without Docker: the pause image, a Debian base image with Python, the project's images.

Nothing can be pulled from the internet here, so every base is made locally:
- pause: a tiny static Go program (`pause/main.go`), `FROM scratch`;
- the Python base: a `debootstrap --variant=minbase` Debian with python3 (the rootfs tarball is
  cached in `<cache>/cluster/`), `FROM scratch` + `ADD rootfs.tar`;
- the project's images: buildah builds the SAME Dockerfiles users build with Docker, passing
  `--build-arg BASE_IMAGE=<the local base>` instead of the public default.
Everything is pushed to the local registry (127.0.0.1:5000), where containerd pulls it over HTTP.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from culture_stack import debian, paths, phases, process
from culture_stack.cluster import config
from culture_stack.server import Context, StackError, say

DEBIAN_SUITE = "bookworm"  # python3 is 3.11 there, the same minor as the public python:3.11-slim
DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: what the base image holds beyond minbase; python-is-python3 so Dockerfiles may say `python`
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
#: buildah and the helpers it runs (culture_stack.debian installs them)
BUILDAH = ("buildah", "fuse-overlayfs", "newuidmap")
PAUSE_DIR = Path(__file__).resolve().parent / "pause"

#: image name (in the local registry) -> Dockerfile, relative to the repository root
PROJECT_IMAGES = {
    "culture/operator": "operator/Dockerfile",
    "culture/services": "services/Dockerfile",
}


def buildah() -> str:
    """The buildah binary (Debian package, with the helpers it uses), installed on first use."""
    debian.need_all(BUILDAH)
    return debian.need("buildah")


def _storage_args(ctx: Context) -> list[str]:
    """buildah keeps its layers in the cache, not in the system-wide container storage."""
    return ["--root", str(ctx.tool("cluster", "buildah", "storage")),
            "--runroot", "/run/culture-platform/buildah", "--storage-driver", "overlay"]


def _buildah(ctx: Context, *args: str, what: str) -> None:
    process.run([buildah(), *_storage_args(ctx), *args], what=what, log=ctx.tool("cluster", "images.log"))


def image_exists(ref: str) -> bool:
    """True when the local registry has this image (name:tag)."""
    import urllib.error
    import urllib.request

    name, _, tag = ref.removeprefix(config.REGISTRY + "/").rpartition(":")
    req = urllib.request.Request(
        f"http://{config.REGISTRY}/v2/{name}/manifests/{tag}", method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def push(ctx: Context, ref: str) -> None:
    """Push a locally built image to the local registry (plain HTTP)."""
    _buildah(ctx, "push", "--tls-verify=false", ref, f"docker://{ref}", what=f"buildah push {ref}")


# -- pause ------------------------------------------------------------------------------------------------


def build_pause(ctx: Context, *, force: bool = False) -> str:
    """The sandbox (pause) image: a static Go binary that sleeps and reaps zombies."""
    ref = config.PAUSE_IMAGE
    if not force and image_exists(ref):
        return ref
    go = shutil.which("go")
    if not go:
        raise StackError("the Go toolchain is missing (`go` not on PATH); it builds the pause image")
    out = ctx.tool("cluster", "pause", "pause")
    out.parent.mkdir(parents=True, exist_ok=True)
    say("  cluster: building the pause image")
    process.run([go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), "main.go"], cwd=PAUSE_DIR,
                env={"CGO_ENABLED": "0", "GO111MODULE": "off", "GOCACHE": str(ctx.tool("go", "build-cache"))},
                what="go build pause", log=ctx.tool("cluster", "images.log"))
    (out.parent / "Dockerfile").write_text(
        'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n')
    build_context(ctx, out.parent, ref)
    return ref


def build_go_image(ctx: Context, name: str, module_dir: Path, package: str, version: str, ref: str, *,
                   force: bool = False) -> str:
    """A static Go program of the Go module proxy as an image `FROM scratch` (its binary at /NAME, the
    entrypoint), pushed to the local registry as ref: built once into `<cache>/NAME/bin/NAME-VERSION`
    by the build module `module_dir` (a new version is built anew); kept while the registry has ref."""
    from culture_stack import tools
    from culture_stack.servers import kube

    if not force and image_exists(ref):
        return ref
    versioned = f"{name}-{version}"
    with kube._build_lock(ctx):
        built = tools.go_build(ctx, name, module_dir, {versioned: package},
                               env={"GOFLAGS": "-mod=mod '-ldflags=-s -w'"}) / versioned
    context = ctx.tool(name, "image")
    context.mkdir(parents=True, exist_ok=True)
    (context / name).write_bytes(built.read_bytes())
    (context / name).chmod(0o755)
    (context / "Dockerfile").write_text(f'FROM scratch\nCOPY {name} /{name}\nENTRYPOINT ["/{name}"]\n')
    say(f"  cluster: building the {name} {version} image")
    with phases.step(f"image {ref.removeprefix(config.REGISTRY + '/')}"):
        build_context(ctx, context, ref)
    return ref


def build_context(ctx: Context, context: Path, ref: str) -> None:
    """buildah-build the Dockerfile of a small context directory (a static binary `FROM scratch`) and
    push it to the local registry as ref."""
    _buildah(ctx, "bud", "--isolation", "chroot", "--layers=false", "-t", ref, str(context),
             what=f"buildah bud {ref}")
    push(ctx, ref)


# -- the Python base image ----------------------------------------------------------------------------------


def base_rootfs(ctx: Context) -> Path:
    """A debootstrap'ed Debian with Python as a tarball, made once and cached (a few minutes)."""
    key = hashlib.sha256(f"{DEBIAN_SUITE} {' '.join(BASE_PACKAGES)} 2".encode()).hexdigest()[:12]
    tarball = ctx.tool("cluster", f"rootfs-{DEBIAN_SUITE}-{key}.tar")
    if tarball.exists():
        return tarball
    debootstrap = debian.need("debootstrap")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as tmp:
        root = Path(tmp) / "root"
        say(f"  cluster: debootstrap {DEBIAN_SUITE} minbase + {', '.join(BASE_PACKAGES)} (first time only)")
        process.run([debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                     DEBIAN_SUITE, str(root), DEBIAN_MIRROR],
                    what="debootstrap", log=ctx.tool("cluster", "debootstrap.log"))
        # the machine's trust store, so `pip install` inside an image build works behind its CA
        host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
        if host_ca.exists():
            shutil.copyfile(host_ca, root / "etc/ssl/certs/ca-certificates.crt")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for f in (root / junk).glob("*"):
                if f.is_file():
                    f.unlink()
        process.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball) + ".part", "."],
                    what="tar the rootfs", log=ctx.tool("cluster", "debootstrap.log"))
        os.replace(str(tarball) + ".part", tarball)
    say(f"  cluster: base rootfs ready in {time.monotonic() - t0:.0f}s: {tarball}")
    return tarball


def build_base(ctx: Context, *, force: bool = False) -> str:
    """The Python base image (stands in for python:3.11-slim): FROM scratch + ADD rootfs.tar."""
    ref = config.BASE_IMAGE
    if not force and image_exists(ref):
        return ref
    with phases.step("image culture/python-base (debootstrap rootfs if not cached)"):
        tarball = base_rootfs(ctx)
        work = ctx.tool("cluster", "base-image")
        work.mkdir(parents=True, exist_ok=True)
        link = work / "rootfs.tar"
        link.unlink(missing_ok=True)
        os.link(tarball, link)  # the build context must hold the tarball; a hard link costs nothing
        (work / "Dockerfile").write_text(
            "FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\n"
            "RUN python3 --version\nCMD [\"python3\"]\n")
        say("  cluster: building the Python base image")
        _buildah(ctx, "bud", "--isolation", "chroot", "--layers=false", "-t", ref, str(work),
                 what=f"buildah bud {ref}")
        push(ctx, ref)
    return ref


# -- the project's images ----------------------------------------------------------------------------------


def image_tag(repo: Path | None = None) -> str:
    """A tag that changes with the sources: the short hash of the files an image is built from."""
    repo = repo or paths.repo_root()
    h = hashlib.sha256()
    for top in ("requirements-runtime.txt", "pyproject.toml", "README.md", "operator", "services", "stack"):
        p = repo / top
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file()
                                                and "__pycache__" not in f.parts)
        for f in files:
            h.update(str(f.relative_to(repo)).encode())
            h.update(f.read_bytes())
    return "dev-" + h.hexdigest()[:12]


def build_dockerfile(ctx: Context, dockerfile: Path, ref: str, *, context: Path | None = None,
                     push_image: bool = True) -> str:
    """buildah-build a Dockerfile with the local base image (its context: the repository, or `context`),
    push it to ref."""
    repo = paths.repo_root()
    dockerfile = dockerfile if dockerfile.is_absolute() else repo / dockerfile
    shown = dockerfile.relative_to(repo) if dockerfile.is_relative_to(repo) else dockerfile
    base = build_base(ctx)
    say(f"  cluster: building {ref} from {shown} (log {ctx.tool('cluster', 'images.log')})")
    t0 = time.monotonic()
    with phases.step(f"image {ref.split('/', 1)[-1]}"):
        _buildah(ctx, "bud", "--isolation", "chroot", "--network", "host", "--tls-verify=false",
                 "--layers", "--build-arg", f"BASE_IMAGE={base}", "-f", str(dockerfile), "-t", ref,
                 str(context or repo), what=f"buildah bud -f {shown} -t {ref}")
        if push_image:
            push(ctx, ref)
    say(f"  cluster: {ref} built{' and pushed' if push_image else ''} in {time.monotonic() - t0:.0f}s")
    return ref


def build_project_image(ctx: Context, name: str, *, tag: str | None = None, force: bool = False) -> str:
    """Build one of PROJECT_IMAGES with buildah from its Dockerfile and push it; returns the ref."""
    tag = tag or image_tag()
    ref = f"{config.REGISTRY}/{name}:{tag}"
    if not force and image_exists(ref):
        say(f"  cluster: {ref} is already in the local registry")
        return ref
    return build_dockerfile(ctx, Path(PROJECT_IMAGES[name]), ref)


# -- the managed databases' image ---------------------------------------------------------------------------

DATABASES_DIR = Path(__file__).resolve().parent / "databases"
DATABASES_IMAGE = "culture/databases"
#: where the image keeps what culture_db.py runs (written into its recipe.json)
_CASSANDRA_LIB = Path("/opt/cassandra/lib")
_NEO4J = Path("/opt/neo4j")


def databases_recipe(cassandra_jars: list[str]) -> dict[str, object]:
    """What culture_db.py runs Cassandra and Neo4j with: the local stack's recipes, with the image's
    paths (pure: the Cassandra jar names in, a JSON-able dict out)."""
    from culture_stack.servers import cassandra, neo4j

    jamm = next((_CASSANDRA_LIB / j for j in sorted(cassandra_jars) if j.startswith("jamm-")), None)
    conf, data = Path("/tmp/cassandra-conf"), Path("/var/lib/cassandra")
    return {
        "cassandra": {
            "jvm": cassandra.daemon_options(conf, data, Path("/tmp/cassandra-logs"), jamm),
            "classpath": f"{_CASSANDRA_LIB}/*",
            "main": "org.apache.cassandra.service.CassandraDaemon",
            "conf": str(conf),
            "logs": "/tmp/cassandra-logs",
            "config": cassandra.node_config(data, "@POD_IP@", 7000, 9042, rpc_address="0.0.0.0"),
            "logback": cassandra.LOGBACK_XML,
        },
        "neo4j": {
            "jvm": list(neo4j.JVM_FLAGS),
            "classpath": f"{_NEO4J / 'launcher'}:{_NEO4J / 'lib'}/*",
            "main": neo4j.LAUNCHER_CLASS,
        },
    }


def _link_tree(src: Path, dst: Path) -> None:
    """dst holds hard links to src's files (the build context costs no copy)."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            os.link(f, dst / f.name)


def build_databases_image(ctx: Context, *, force: bool = False) -> str:
    """The managed databases' image of the local node (stack/culture_stack/cluster/databases): Debian's
    PostgreSQL and Redis, the stack's Cassandra and Neo4j jars, SecantusDB; pushed as
    127.0.0.1:5000/culture/databases:TAG, TAG a hash of everything it is built from."""
    import json

    from culture_stack.servers import cassandra, neo4j

    stack_cassandra, stack_neo4j = cassandra.Cassandra(), neo4j.Neo4j()
    stack_cassandra.install(ctx)  # the jars (cached by the local stack; resolved here if it never ran)
    stack_neo4j.install(ctx)
    cassandra_lib = ctx.tool("cassandra", "lib")
    recipe = json.dumps(databases_recipe([f.name for f in cassandra_lib.iterdir()]), indent=1)
    h = hashlib.sha256(recipe.encode())
    for f in sorted(DATABASES_DIR.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    for lib in (cassandra_lib, stack_neo4j._lib(ctx), stack_neo4j._launcher_dir(ctx)):
        h.update(" ".join(sorted(f.name for f in lib.iterdir())).encode())
    ref = f"{config.REGISTRY}/{DATABASES_IMAGE}:dev-{h.hexdigest()[:12]}"
    if not force and image_exists(ref):
        return ref
    work = ctx.tool("cluster", "databases-image")
    work.mkdir(parents=True, exist_ok=True)
    for f in DATABASES_DIR.iterdir():
        shutil.copyfile(f, work / f.name)
    (work / "recipe.json").write_text(recipe)
    _link_tree(cassandra_lib, work / "cassandra-lib")
    _link_tree(stack_neo4j._lib(ctx), work / "neo4j-lib")
    _link_tree(stack_neo4j._launcher_dir(ctx), work / "neo4j-launcher")
    say("  cluster: the databases image: Debian's PostgreSQL, Redis and a JRE, the stack's Cassandra and "
        "Neo4j jars, SecantusDB")
    return build_dockerfile(ctx, work / "Dockerfile", ref, context=work)
