"""`culture cluster ...`: a real single-node Kubernetes cluster on this machine."""

from __future__ import annotations

import argparse

from culture_stack.cli import print_status
from culture_stack.server import Context


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cluster` and its verbs to the top-level `culture` parser."""
    p = subparsers.add_parser(
        "cluster",
        help="run a real single-node Kubernetes cluster here (containerd, kubelet, scheduler, "
        "kube-proxy, cluster DNS, a local image registry) on the stack's control plane",
        description="Manage the local single-node cluster. Needs root. Logs: `culture stack logs NAME` "
        "(containerd, kubelet, kube-scheduler, kube-proxy, pod-gateway, registry); cluster DNS is "
        "CoreDNS in kube-system (kubectl logs -n kube-system deploy/coredns).",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = verbs.add_parser("up", help="start the control plane (if needed) and the node; wait until Ready")
    up.add_argument("--images", action="store_true",
                    help="also build and push the project's images (operator, services, databases) and "
                    "generate Strimzi's CRDs for the e2e tests (everything the e2e layer needs built)")
    up.set_defaults(func=_up)
    down = verbs.add_parser("down", help="stop the node, remove pods, interfaces and iptables rules")
    down.add_argument("--clean", action="store_true", help="also wipe the node's data (kubelet, containerd)")
    down.set_defaults(func=_down)
    st = verbs.add_parser("status", help="per component: pid, health, self-reported version")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_status)
    img = verbs.add_parser("images", help="build the pause, base, project and managed-database images into "
                           "the local registry")
    img.add_argument("--force", action="store_true", help="rebuild even when the registry has them")
    img.set_defaults(func=_images)
    one = verbs.add_parser("build-image", help="build one Dockerfile with buildah on the local base "
                           "image and push it (skaffold's custom build command in the `local` profile)")
    one.add_argument("dockerfile", help="path of the Dockerfile, relative to the repository root")
    one.add_argument("image", nargs="?", default=None,
                     help="full image reference; default: $IMAGE (set by skaffold)")
    one.add_argument("--no-push", action="store_true",
                     help="only build (default: push unless $PUSH_IMAGE=false)")
    one.set_defaults(func=_build_image)
    crds = verbs.add_parser("strimzi-crds", help="generate Strimzi's real CRDs (from its API model on Maven "
                            "Central, cached) and print their files")
    crds.set_defaults(func=_strimzi_crds)
    sk = verbs.add_parser("skaffold", help="run skaffold (built on first use) against this cluster, from the "
                          "repository root, e.g. `culture cluster skaffold run -p local`",
                          description="Everything after `skaffold` goes to skaffold itself; KUBECONFIG, "
                          "helm and kubectl are the stack's.")
    sk.add_argument("args", nargs=argparse.REMAINDER, help="skaffold's own arguments (`--help` for its help)")
    sk.set_defaults(func=_skaffold)


def _up(args: argparse.Namespace) -> int:
    from culture_stack.cluster import lifecycle

    ctx = Context.default()
    lifecycle.up(ctx)
    if args.images:
        _build_images(ctx, force=False)
        _generate_strimzi_crds(ctx)
    return 0


def _generate_strimzi_crds(ctx: Context) -> None:
    from culture_stack.cluster import strimzi_crds

    for path in strimzi_crds.generate(ctx):
        print(path)


def _strimzi_crds(args: argparse.Namespace) -> int:
    _generate_strimzi_crds(Context.default())
    return 0


def _down(args: argparse.Namespace) -> int:
    from culture_stack.cluster import lifecycle

    lifecycle.down(Context.default(), clean=args.clean)
    return 0


def _status(args: argparse.Namespace) -> int:
    from culture_stack.cluster import lifecycle

    return print_status(lifecycle.status(Context.default()), as_json=args.json, heading="COMPONENT", width=16)


def _build_images(ctx: Context, *, force: bool) -> None:
    from culture_stack.cluster import images

    images.build_pause(ctx, force=force)
    images.build_base(ctx, force=force)
    tag = images.image_tag()
    for name in images.PROJECT_IMAGES:
        print(images.build_project_image(ctx, name, tag=tag, force=force))
    print(images.build_databases_image(ctx, force=force))


def _images(args: argparse.Namespace) -> int:
    _build_images(Context.default(), force=args.force)
    return 0


def _build_image(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from culture_stack.cluster import images
    from culture_stack.server import StackError

    ref = args.image or os.environ.get("IMAGE")
    if not ref:
        raise StackError("no image reference: pass IMAGE or set $IMAGE")
    push = not args.no_push and os.environ.get("PUSH_IMAGE", "true") != "false"
    images.build_dockerfile(Context.default(), Path(args.dockerfile), ref, push_image=push)
    return 0


def _skaffold(args: argparse.Namespace) -> int:
    from culture_stack.cluster import skaffold

    skaffold.run(Context.default(), args.args or ["--help"])
