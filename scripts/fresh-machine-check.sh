#!/usr/bin/env bash
# Fresh-machine check (contributors): `make test` as on a machine that has never seen the project.
#
#   scripts/fresh-machine-check.sh [--dry-run] [--dir DIR] [--yes]
#
# 1. clones this repository's HEAD (committed work only) into DIR/clone;
# 2. stops the machine's running stack and cluster (the fresh run needs the same fixed ports), using
#    this checkout's .venv and the state dir in $CULTURE_STATE_DIR (default: the stack's default);
# 3. purges the Debian packages the project installs, as `culture stack packages --purgeable
#    --with-owners` lists them (read from the clone's stack/culture_stack/debian.py: one source of
#    truth; the owners are the real packages behind metapackages), plus what apt then finds unused; it refuses when apt would also remove a package of the base system or one of
#    the README's requirements (JDK, Maven, Go, Node.js, Python, git);
# 4. runs `make test` in the clone under /usr/bin/time with empty CULTURE_CACHE_DIR, CULTURE_STATE_DIR,
#    pip, uv and npm caches (all under DIR), logging to DIR/make-test.log (time and peak memory in
#    DIR/time.txt).
#
# --dry-run prints every step (and what apt would remove: `apt-get -s`, which changes nothing) and
# does none of them. Needs root (apt, the cluster). Destructive for the running stack's packages:
# do not run it on a machine others are using.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
dry_run=0
assume_yes=0
dir="${TMPDIR:-/tmp}/culture-fresh-$(date -u +%Y%m%dT%H%M%SZ)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --yes) assume_yes=1 ;;
    --dir) dir="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "==> $*" >&2; }
run() {  # print a command; run it unless --dry-run
  echo "  \$ $*" >&2
  if [[ $dry_run == 0 ]]; then "$@"; fi
}

if [[ $(id -u) != 0 && $dry_run == 0 ]]; then
  echo "the fresh-machine check needs root (apt-get purge, the cluster); try --dry-run" >&2
  exit 1
fi

# -- 1. a fresh clone ---------------------------------------------------------------------------------
head="$(git -C "$repo" rev-parse HEAD)"
say "1. clone $repo at $head into $dir/clone"
if [[ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]]; then
  say "   note: $repo has uncommitted changes; the clone has only what is committed"
fi
run mkdir -p "$dir"
run git clone -q --no-checkout "$repo" "$dir/clone"
run git -C "$dir/clone" checkout -q --detach "$head"

# the package list, from the installer code of the commit under test (standard library only)
src="$repo"
[[ -d "$dir/clone/stack" ]] && src="$dir/clone"
mapfile -t packages < <(PYTHONPATH="$src/stack" python3 -c \
  'from culture_stack import debian
print("\n".join(sorted({*debian.packages(purgeable=True), *debian.owners(purgeable=True)})))')
say "   the project installs (purgeable): ${packages[*]}"

# -- 2. stop the running stack (same ports) ----------------------------------------------------------------
culture="$repo/.venv/bin/culture"
say "2. stop the machine's stack and cluster (state: ${CULTURE_STATE_DIR:-the default}); the fresh run needs their ports"
if [[ -x "$culture" ]]; then
  if [[ $(id -u) == 0 ]]; then
    run "$culture" cluster down
  fi
  run "$culture" stack down
else
  say "   no $culture: stop any running stack yourself (\`culture stack down\`, \`culture cluster down\`)"
fi

# -- 3. purge the project's Debian packages --------------------------------------------------------------
say "3. purge ${packages[*]} (and their dependencies nothing else needs)"
# what apt would remove (a simulation: it changes nothing), less the machine's locale set-up
# (postgresql pulls `locales` in; purging it would drop the machine's generated locales)
keep=" locales libc-l10n "
mapfile -t removed < <(apt-get -s purge --autoremove "${packages[@]}" 2>/dev/null |
  awk '/^Purg /{print $2}' | sort -u | while read -r p; do [[ "$keep" == *" $p "* ]] || echo "$p"; done)
say "   apt would remove: ${removed[*]:-nothing (none of them is installed)}"
protected=()
for p in "${removed[@]}"; do
  fields="$(dpkg-query -W -f='${Essential} ${Priority}' "$p" 2>/dev/null || true)"
  case "$fields" in yes*|*required|*important) protected+=("$p") ;; esac
  case "$p" in openjdk-*|default-j*|maven|golang|golang-go|golang-[0-9]*|nodejs|npm|python3*|git) protected+=("$p") ;; esac
done
if [[ ${#removed[@]} -gt 0 ]]; then
  # purging exactly this list must remove nothing more
  mapfile -t extra < <(apt-get -s purge "${removed[@]}" 2>/dev/null | awk '/^Purg /{print $2}' |
    while read -r p; do [[ " ${removed[*]} " == *" $p "* ]] || echo "$p"; done)
  protected+=("${extra[@]}")
fi
if [[ ${#protected[@]} -gt 0 ]]; then
  echo "refusing: the purge would also remove ${protected[*]} (base system or a README requirement)" >&2
  exit 1
fi
if [[ $dry_run == 0 && $assume_yes == 0 && ${#removed[@]} -gt 0 ]]; then
  read -r -p "purge these ${#removed[@]} packages? [y/N] " answer
  [[ "$answer" == y || "$answer" == Y ]] || { echo "stopped: nothing purged" >&2; exit 1; }
fi
if [[ ${#removed[@]} -gt 0 ]]; then
  # hold the apt lock every `culture` process takes (the lock file names its holder's pid)
  lock="${CULTURE_APT_LOCK:-/run/lock/culture-platform-apt.lock}"
  echo "  (holding $lock)" >&2
  if [[ $dry_run == 0 ]]; then
    exec 9>>"$lock"
    flock 9
    truncate -s 0 "$lock" && echo "$$" >"$lock"
  fi
  run env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 purge -y -q "${removed[@]}"
  if [[ $dry_run == 0 ]]; then truncate -s 0 "$lock"; exec 9>&-; fi
fi

# -- 4. make test, from nothing ------------------------------------------------------------------------
say "4. make test in $dir/clone with empty caches and state (log: $dir/make-test.log)"
fresh_env=(
  CULTURE_CACHE_DIR="$dir/cache" CULTURE_STATE_DIR="$dir/state"
  PIP_CACHE_DIR="$dir/pip-cache" UV_CACHE_DIR="$dir/uv-cache" npm_config_cache="$dir/npm-cache" CI=true
)
timer=()
if [[ -x /usr/bin/time ]]; then timer=(/usr/bin/time -v -o "$dir/time.txt"); fi
echo "  \$ cd $dir/clone && env ${fresh_env[*]} ${timer[*]} make test 2>&1 | tee $dir/make-test.log" >&2
if [[ $dry_run == 1 ]]; then
  say "dry run: nothing was done"
  exit 0
fi
start=$SECONDS
set +e
(cd "$dir/clone" && env "${fresh_env[@]}" "${timer[@]}" make test) 2>&1 | tee "$dir/make-test.log"
status=${PIPESTATUS[0]}
set -e
elapsed=$((SECONDS - start))
say "make test exited $status after $((elapsed / 60))m$((elapsed % 60))s; log $dir/make-test.log"
if [[ -f "$dir/time.txt" ]]; then
  grep -E 'Elapsed|Maximum resident|Exit status' "$dir/time.txt" | sed 's/^/   /' >&2
fi
say "the stack of this check runs from $dir/state: stop it with" \
  "CULTURE_STATE_DIR=$dir/state $dir/clone/.venv/bin/culture stack down (and cluster down)"
exit "$status"
