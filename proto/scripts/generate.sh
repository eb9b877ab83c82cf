#!/usr/bin/env bash
# Generates the Python code of the contracts into services/culture/ (one package for every
# service: messages, gRPC stubs, .pyi type stubs, __init__.py files), and services/buf/ (the
# messages of the vendored buf/validate/validate.proto, which the contracts' annotations import).
#   proto/scripts/generate.sh           regenerate services/culture/ in place
#   proto/scripts/generate.sh --check   regenerate into a temporary directory and fail if it
#                                       differs from services/culture/ (stale generated code)
# Offline: buf runs only local plugins, all backed by grpcio-tools from the project's venv.
set -euo pipefail

mode="${1:-write}"
case "$mode" in
  write|--check) ;;
  -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
buf="$(proto/scripts/ensure-buf.sh)"
# The plugins run `python3`; make it the project's venv, which has the pinned grpcio-tools.
if [[ -x "$root/.venv/bin/python3" ]]; then
  export PATH="$root/.venv/bin:$PATH"
fi
if ! python3 -c 'import grpc_tools' 2>/dev/null; then
  echo "error: grpcio-tools is not importable by $(command -v python3): run 'make venv' first" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "==> buf generate (proto/ -> services/culture/)" >&2
"$buf" generate proto --template proto/buf.gen.yaml --output "$tmp"
packages=(culture buf)
# Make every generated directory a regular package, so `pip install -e .` finds `culture` and `buf`.
for package in "${packages[@]}"; do
  find "$tmp/services/$package" -type d -exec touch {}/__init__.py \;
done

for package in "${packages[@]}"; do
  generated="$tmp/services/$package"
  if [[ "$mode" == "--check" ]]; then
    # __pycache__: bytecode Python writes when anything imports the package (tests, a service) is not stale code
    if ! diff -r -u -x __pycache__ "services/$package" "$generated" >"$tmp/diff" 2>&1; then
      head -n 60 "$tmp/diff" >&2
      echo "error: services/$package/ is stale: run proto/scripts/generate.sh and commit the result" >&2
      exit 1
    fi
    echo "==> services/$package/ is up to date" >&2
  else
    rm -rf "services/$package"
    cp -r "$generated" "services/$package"
    echo "==> wrote services/$package/ ($(find "services/$package" -name '*.py' | wc -l) Python files)" >&2
  fi
done
