"""skaffold v2, built from the Go module proxy, and the environment it needs to drive this cluster.

`culture cluster skaffold ARGS...` runs it with KUBECONFIG set to the stack's admin kubeconfig and
the stack's helm and kubectl first on PATH, from the repository root (where skaffold.yaml is), so
`culture cluster skaffold run -p local` builds the images with buildah (the profile's custom build
command), pushes them to the local registry and installs the operator chart here.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import NoReturn

from culture_stack import paths, tools
from culture_stack.server import Context, say
from culture_stack.servers import kube

SKAFFOLD_VERSION = "v2.16.1"
BUILD_DIR = kube.BUILD_DIR / "skaffold"
PACKAGE = "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"
VERSION_VAR = "github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version"


def skaffold_path(ctx: Context | None = None) -> Path:
    return kube.bin_dir(ctx) / "skaffold"


def _build_key() -> str:
    h = hashlib.sha256(SKAFFOLD_VERSION.encode())
    for name in ("go.mod", "go.sum"):
        h.update((BUILD_DIR / name).read_bytes())
    return h.hexdigest()[:16]


def install(ctx: Context) -> Path:
    """Build skaffold into `<cache>/kube/bin` once (about 5 minutes on 2 idle cores; then instant)."""
    with kube._build_lock(ctx):
        target = skaffold_path(ctx)
        stamp = target.with_name(".skaffold-build-key")
        key = _build_key()
        if target.exists() and stamp.exists() and stamp.read_text().strip() == key:
            return target
        target.unlink(missing_ok=True)
        say(f"  skaffold: building {SKAFFOLD_VERSION} from the Go module proxy (first time only); "
            f"log in {ctx.tool('kube', 'build.log')}")
        flags = f"-X {VERSION_VAR}={SKAFFOLD_VERSION}"
        tools.go_build(ctx, "kube", BUILD_DIR, {"skaffold": PACKAGE},
                       env={"GOFLAGS": f"-mod=mod '-ldflags={flags}'"})
        stamp.write_text(key + "\n")
        return target


def environment(ctx: Context) -> dict[str, str]:
    """skaffold's environment: the stack's kubeconfig, helm, kubectl and `culture` found first."""
    path = os.pathsep.join([str(kube.bin_dir(ctx)), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "")])
    return {**os.environ, "KUBECONFIG": str(kube.kubeconfig_path(ctx)), "PATH": path,
            "SKAFFOLD_UPDATE_CHECK": "false", "SKAFFOLD_INTERACTIVE": "false"}


def run(ctx: Context, args: list[str]) -> NoReturn:
    """Become skaffold with `args`, in the repository root (its exit status is the command's)."""
    binary = install(ctx)
    os.chdir(paths.repo_root())
    os.execve(binary, [str(binary), *args], environment(ctx))
