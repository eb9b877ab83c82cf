#!/usr/bin/env bash
# Prints the path of the pinned buf CLI, installing it first when it is missing.
# buf comes from the npm registry (@bufbuild/buf ships the native binary for this platform as an
# optional dependency) into the cache outside the repository, so a second run is instant.
# Progress goes to stderr; stdout carries only the path, for `buf=$(proto/scripts/ensure-buf.sh)`.
set -euo pipefail

BUF_VERSION=1.75.0
cache_root="${CULTURE_CACHE_DIR:-$HOME/.cache/culture-platform}"
prefix="$cache_root/buf/$BUF_VERSION"
bin="$prefix/node_modules/.bin/buf"

if [[ -x "$bin" ]] && [[ "$("$bin" --version 2>/dev/null)" == "$BUF_VERSION" ]]; then
  echo "$bin"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is needed to install buf: install Node.js 18+ with npm (e.g. apt-get install -y nodejs npm)" >&2
  exit 1
fi
echo "==> installing buf $BUF_VERSION from npm (@bufbuild/buf) into $prefix" >&2
mkdir -p "$prefix"
# --prefix keeps it out of the repo; the lock file npm writes there makes reinstalls reproducible.
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "@bufbuild/buf@$BUF_VERSION" >&2
if ! [[ "$("$bin" --version 2>/dev/null)" == "$BUF_VERSION" ]]; then
  echo "error: buf $BUF_VERSION did not install into $prefix (see npm's output above);" \
       "remove that directory and retry" >&2
  exit 1
fi
echo "==> buf $BUF_VERSION ready" >&2
echo "$bin"
