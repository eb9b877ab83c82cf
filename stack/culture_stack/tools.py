"""Getting build tools and artifacts from the package registries, cached outside the repo."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from culture_stack import debian, phases, process
from culture_stack.server import Context, StackError, say


def java_home(min_version: int = 17) -> Path:
    """A JDK of at least min_version: JAVA_HOME if set, else the first one under /usr/lib/jvm."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    candidates += sorted(Path("/usr/lib/jvm").glob("*")) if Path("/usr/lib/jvm").is_dir() else []
    for home in candidates:
        java = home / "bin" / "java"
        if java.exists() and _java_major(java) >= min_version:
            return home
    raise StackError(
        f"no JDK >= {min_version} found (looked at $JAVA_HOME and /usr/lib/jvm/*); "
        f"install one (Debian 12 has openjdk-17-jdk-headless; newer ones come from Adoptium/Temurin), "
        f"or set JAVA_HOME"
    )


def java_home_exact(major: int) -> Path:
    """A JDK of exactly this major version (some servers support only one); Debian's JDK 17 is
    installed when no JDK of that version is there."""
    for attempt in range(2):
        for home in sorted(Path("/usr/lib/jvm").glob("*")) if Path("/usr/lib/jvm").is_dir() else []:
            java = home / "bin" / "java"
            if java.exists() and not home.is_symlink() and _java_major(java) == major:
                return home
        if attempt == 0 and major == 17:
            debian.install([debian.COMMANDS["javac"].package])  # openjdk-17-jdk-headless (Debian 12's)
    raise StackError(f"no JDK {major} under /usr/lib/jvm; install openjdk-{major}-jdk-headless")


def _java_major(java: Path) -> int:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError):
        return 0
    for token in out.split():
        token = token.strip('"')
        if token and token[0].isdigit():
            head = token.split(".")[0]
            return int(head) if head.isdigit() else 0
    return 0


def maven_classpath(ctx: Context, name: str, artifacts: list[str], *, exclusions: list[str] = ()) -> Path:
    """Resolve Maven artifacts ("group:artifact:version") and their runtime dependencies from Maven
    Central into `<cache>/NAME/lib` (jars), using Maven itself with a local repo in the cache.

    Returns the lib directory. A marker file keyed by the artifact list keeps a second call instant.
    """
    lib = ctx.tool(name, "lib")
    key = hashlib.sha256("\n".join([*artifacts, "--", *exclusions]).encode()).hexdigest()[:16]
    marker = ctx.tool(name, f".resolved-{key}")
    if marker.exists() and lib.is_dir():
        return lib
    mvn = debian.need("mvn")
    work = ctx.tool(name, "pom")
    work.mkdir(parents=True, exist_ok=True)
    excl = "".join(
        f"<exclusion><groupId>{e.split(':')[0]}</groupId><artifactId>{e.split(':')[1]}</artifactId></exclusion>"
        for e in exclusions
    )
    deps = "".join(
        "<dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version>"
        "<exclusions>{}</exclusions></dependency>".format(*a.split(":")[:3], excl)
        for a in artifacts
    )
    (work / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>dev.culture.stack</groupId><artifactId>{name}</artifactId><version>1</version>"
        f"<dependencies>{deps}</dependencies></project>\n"
    )
    if lib.exists():
        shutil.rmtree(lib)
    say(f"  {name}: resolving {', '.join(artifacts)} from Maven Central (first time only)...")
    with phases.step(f"maven fetch {name}"):
        process.run(
            [
                mvn, "-B", "-ntp", f"-Dmaven.repo.local={ctx.tool('m2')}",
                "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={lib}",
            ],
            cwd=work,
            what=f"mvn dependency:copy-dependencies ({name})",
            log=ctx.tool(name, "maven.log"),
        )
    marker.write_text("\n".join(artifacts) + "\n")
    return lib


def go_build(ctx: Context, name: str, module_dir: Path, packages: dict[str, str], *,
             env: dict[str, str] | None = None) -> Path:
    """Build Go main packages of a module directory into `<cache>/NAME/bin`.

    packages maps output binary name -> package path. The Go build and module caches live in the
    cache too, so a rebuild after a fresh clone is quick. Returns the bin directory.
    """
    go = shutil.which("go")
    if not go:
        raise StackError("the Go toolchain is missing (`go` not on PATH); install golang or /usr/local/go")
    bin_dir = ctx.tool(name, "bin")
    bin_dir.mkdir(parents=True, exist_ok=True)
    go_env = {
        "GOCACHE": str(ctx.tool("go", "build-cache")),
        "GOMODCACHE": str(ctx.tool("go", "mod-cache")),
        "GOFLAGS": "-mod=mod",
        "CGO_ENABLED": "0",
        **(env or {}),
    }
    for binary, pkg in packages.items():
        target = bin_dir / binary
        if target.exists():
            continue
        say(f"  {name}: building {binary} from {pkg} (first time only, may take minutes)...")
        with phases.step(f"go build {binary}"):
            process.run([go, "build", "-trimpath", "-o", str(target), pkg], cwd=module_dir, env=go_env,
                        what=f"go build -o {binary} {pkg}", log=ctx.tool(name, "build.log"))
    return bin_dir
