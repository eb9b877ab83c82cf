#!/usr/bin/env bash
# buf breaking: the contracts in the work tree against the previous commit of main.
#   PROTO_BREAKING_AGAINST=<git ref>   compare with another commit instead (e.g. origin/main, HEAD)
# Skips, saying why, when there is nothing to compare with: the very first commit, a shallow
# clone without the previous commit, or a previous commit that has no proto/ module yet.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
buf="$(proto/scripts/ensure-buf.sh)"

if [[ -n "${PROTO_BREAKING_AGAINST:-}" ]]; then
  against="$PROTO_BREAKING_AGAINST"
elif git rev-parse --verify -q main >/dev/null; then
  against="main~1"
else
  against="HEAD~1"  # no local branch named main (e.g. a detached checkout): same idea
fi

if ! sha="$(git rev-parse --verify -q "$against^{commit}")"; then
  echo "==> buf breaking: SKIPPED, there is no commit '$against' to compare with" \
       "(the first commit of the repository, or a shallow clone)" >&2
  exit 0
fi
if ! git cat-file -e "$sha:proto/buf.yaml" 2>/dev/null; then
  echo "==> buf breaking: SKIPPED, $against (${sha:0:12}) has no proto/ module yet: nothing to break" >&2
  exit 0
fi
echo "==> buf breaking: proto/ against $against (${sha:0:12})" >&2
"$buf" breaking proto --against ".git#ref=$sha,subdir=proto"
echo "==> buf breaking: no breaking change" >&2
