"""`python -m culture_operator.uninstall`: delete CulturePlatforms and wait until they are gone.

The platform chart runs it as a `pre-delete` hook when it installs the operator too: the operator
must still run when its platforms are deleted, because it holds a finalizer on each (kopf's, for the
drift timer) and removes it as the deletion completes. Without the hook `helm uninstall` would delete
the operator and the platform at once and could leave the platform stuck with its finalizer.
"""

from __future__ import annotations

import argparse
import sys
import time

from culture_operator.kube import PLATFORM_KIND, Kube


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m culture_operator.uninstall",
        description="Delete CulturePlatform objects and wait until the operator has finalized them "
        "(their children go with them: owner references). Credentials: in-cluster, else KUBECONFIG.")
    parser.add_argument("names", nargs="+", metavar="NAME", help="CulturePlatform names")
    parser.add_argument("-n", "--namespace", required=True, help="their namespace")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for the operator to finalize them (default 180)")
    args = parser.parse_args(argv)
    kube = Kube()
    deadline = time.monotonic() + args.timeout
    for name in args.names:
        if kube.delete_platform(args.namespace, name):
            print(f"deleting CulturePlatform {args.namespace}/{name}", flush=True)
        else:
            print(f"CulturePlatform {args.namespace}/{name} does not exist", flush=True)
    waiting = list(args.names)
    last_report = 0.0
    while waiting:
        waiting = [n for n in waiting if kube.get(PLATFORM_KIND, args.namespace, n) is not None]
        if not waiting:
            break
        now = time.monotonic()
        if now > deadline:
            print(f"the operator did not finalize {', '.join(waiting)} within {args.timeout:.0f} s: is it "
                  f"running? (kubectl get pods -n {args.namespace}); `helm uninstall --no-hooks` skips "
                  "this wait", file=sys.stderr, flush=True)
            return 1
        if now - last_report >= 10:
            print(f"waiting for the operator to finalize {', '.join(waiting)}", flush=True)
            last_report = now
        time.sleep(1.0)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
