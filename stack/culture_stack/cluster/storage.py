"""Storage on the local node as kind has it: the default StorageClass `standard`, served by
local-path-provisioner, built from its Go module (`github.com/rancher/local-path-provisioner`, build
module `stack/culture_stack/kube_build/localpath`) into an image `FROM scratch` pushed to the local
registry, and deployed from upstream's manifests (`config.local_path_manifests`). A volume is a
directory under `<state>/data/local-path` on the host, made by a helper pod (the Python base image:
it has sh, mkdir and rm) and removed with its PersistentVolume."""

from __future__ import annotations

import time
from pathlib import Path

from culture_stack.cluster import components, config, images
from culture_stack.server import Context, StackError, Status, say
from culture_stack.servers import kube

BUILD_DIR = kube.BUILD_DIR / "localpath"
PACKAGE = "github.com/rancher/local-path-provisioner"
NAME = "local-path-provisioner"
NAMESPACE = "local-path-storage"


def volumes_dir(ctx: Context) -> Path:
    """Where the volumes live on the host (kept with the node's data; `cluster down --clean` wipes it)."""
    return ctx.data("local-path")


def build_image(ctx: Context, *, force: bool = False) -> str:
    """The provisioner's image in the local registry: its static binary `FROM scratch`."""
    return images.build_go_image(ctx, NAME, BUILD_DIR, PACKAGE, f"v{config.LOCAL_PATH_VERSION}",
                                 config.LOCAL_PATH_IMAGE, force=force)


def _available(dep: dict | None) -> bool:
    return (dep or {}).get("status", {}).get("availableReplicas", 0) >= 1


def up(ctx: Context, timeout: float = 300.0) -> None:
    """Build and push the images if missing, apply the manifests, wait until the provisioner runs."""
    image, helper = build_image(ctx), images.build_base(ctx)
    path = volumes_dir(ctx)
    path.mkdir(parents=True, exist_ok=True)
    components.apply(ctx, config.local_path_manifests(image, helper, str(path)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _available(components.deployment(ctx, NAMESPACE, NAME)):
            say(f"  cluster: StorageClass {config.STORAGE_CLASS} (default) served by local-path-provisioner, "
                f"volumes in {path}")
            return
        time.sleep(1.0)
    pods = components.kubectl(ctx, "get", "pods", "-n", NAMESPACE, "-o", "wide", check=False).stdout
    raise StackError(f"local-path-provisioner did not become available within {timeout:.0f}s\n{pods}")


def status(ctx: Context) -> Status:
    """One status row: the provisioner's Deployment, its version and the default StorageClass."""
    try:
        dep = components.deployment(ctx, NAMESPACE, NAME)
    except Exception as exc:  # noqa: BLE001 - status reports, it never fails
        return Status(name="storage", port=0, pid=None, running=False, healthy=False, detail=str(exc))
    if not dep:
        return Status(name="storage", port=0, pid=None, running=False, healthy=False, detail="not deployed")
    image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    healthy = _available(dep)
    return Status(name="storage", port=0, pid=None, running=True, healthy=healthy,
                  version=f"local-path-provisioner {image.rpartition(':')[2]}",
                  detail=f"default StorageClass {config.STORAGE_CLASS}, volumes in {volumes_dir(ctx)}")
