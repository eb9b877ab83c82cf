"""Every external program `culture stack` and `culture cluster` run has an installer entry.

The source of stack/culture_stack is parsed (ast): every place that runs a program (subprocess,
asyncio's subprocess, os.exec*, process.run/spawn, a server's Launch, or any call given a literal
argv list) is found and its program resolved: a literal must be a base-system program
(`debian.BASE`), a program resolved through `debian.need()`/`debian.which()`/`shutil.which()` must be
in `debian.COMMANDS` (which names its Debian package) or `debian.PREREQUISITES`, and anything the
parser cannot resolve must be in `DYNAMIC` below, with what it runs and where that comes from. A new
program, or a new way of running one, fails here until it has an installer entry.
"""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path

import pytest

from culture_stack import debian, registry
from culture_stack.cluster import components, images, lifecycle, network
from culture_stack.server import Context

pytestmark = pytest.mark.unit

ROOT = Path(debian.__file__).resolve().parent

#: code that runs inside an image, not on this machine: the image's Dockerfile installs what it runs
#: (cluster/databases/Dockerfile: Debian's PostgreSQL, Redis and JRE, SecantusDB from PyPI)
IMAGE_CONTENT = ("cluster/databases/",)

#: run sites whose program the parser cannot name: (file under culture_stack/, expression) -> what it is
DYNAMIC: dict[tuple[str, str], str] = {
    # generic runners: their callers are checked where they build the argv
    ("process.py", "list(argv)"): "process.spawn/run: callers pass the argv",
    ("slack.py", "program[0]"): "culture_stack.slack execs its argv: callers build it (servers/cassandra.py)",
    ("cluster/network.py", "argv"): "_run: _ip/_iptables/_remove_pod_chains pass debian.need() paths",
    ("stack.py", "launch.argv"): "a server's Launch, checked where each server builds it",
    # the JDK (a README requirement; java_home_exact installs Debian's JDK 17 when it is missing)
    ("tools.py", "str(java)"): "java -version of each JDK found under /usr/lib/jvm",
    ("servers/kafka.py", "str(tools.java_home(min_version) / 'bin' / 'java')"): "java of tools.java_home",
    ("servers/neo4j.py", "str(java)"): "java of neo4j.java_home()",
    ("cluster/strimzi_crds.py", "str(java)"): "java of tools.java_home(21): Strimzi's CRD generator",
    ("servers/neo4j.py", "str(javac)"): "javac of the JDK, installed by neo4j._javac() when missing",
    # the project's own Python (a README requirement) and what it installs from PyPI
    ("servers/mongo.py", "sys.executable"): "the project's Python: venv and pip for SecantusDB",
    ("servers/mongo.py", "str(self._daemon(ctx))"): "SecantusDB's server, pip-installed into the cache",
    ("servers/smtp.py", "sys.executable"): "the project's Python: the SMTP sink module",
    ("cluster/components.py", "sys.executable"): "the project's Python: pod gateway, cluster DNS modules",
    ("dev.py", "sys.executable"): "the project's Python: `culture serve` children of the dev runner",
    ("servers/cassandra.py", "slack.prefix(TIMER_SLACK_NS)"): "the project's Python: culture_stack.slack, "
                                                              "which execs the rest of the argv",
    # built from Go modules by tools.go_build (go is a README requirement)
    ("servers/kube.py", "str(bin_dir(ctx) / 'kube-apiserver')"): "built by kube.install_binaries",
    ("servers/kube.py", "str(bin_dir(ctx) / 'kube-controller-manager')"): "built by kube.install_binaries",
    ("cluster/components.py", "str(kube.bin_dir(ctx) / 'kubelet')"): "built by install_node_binaries",
    ("cluster/components.py", "str(kube.bin_dir(ctx) / 'kube-scheduler')"): "built by install_node_binaries",
    ("cluster/components.py", "str(kube.bin_dir(ctx) / 'kube-proxy')"): "built by install_node_binaries",
    ("cluster/components.py", "str(kube.kubectl_path(ctx))"): "kubectl, built by kube.install_binaries",
    ("cluster/lifecycle.py", "str(proxy)"): "kube-proxy --cleanup, built by install_node_binaries",
    ("cluster/skaffold.py", "kube.bin_dir(ctx) / 'skaffold'"): "skaffold, built by skaffold.install",
    # postgres: _bindir() is debian.need('initdb')'s directory
    ("servers/postgres.py", "str(_bindir() / 'initdb')"): "PostgreSQL's initdb via debian.need('initdb')",
    ("servers/postgres.py", "str(_bindir() / 'postgres')"): "PostgreSQL's server via debian.need('initdb')",
}

#: literals allowed outside BASE: (file, program) -> why
LITERAL_OK: dict[tuple[str, str], str] = {
    # the CNI plugin runs as a script of the host's python3 (standard library only: it cannot import
    # culture_stack); containerd, which runs it, declares sysctl and iptables in Containerd.commands
    ("cluster/cni_stack_ports.py", "iptables"): "installed with containerd (Containerd.commands)",
}

_RUNNERS = {
    "subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call",
    "subprocess.check_output", "asyncio.create_subprocess_exec", "process.run", "process.spawn",
    "Launch", "os.execv", "os.execve", "os.execvp", "os.execvpe",
}
_RESOLVERS = {"debian.need", "debian.which", "shutil.which", "need", "which"}
#: calls that take a list literal that is not an argv
_NOT_ARGV = {"debian.need_all", "need_all", "debian.install", "install", "registry.select", "select",
             "apt_get", "rng.sample", "rng.choice"}  # the last two: seed.py's random demo data


def _name(func: ast.expr) -> str:
    return ast.unparse(func)


def _scopes(tree: ast.Module) -> dict[ast.AST, ast.AST]:
    """node -> the innermost function (or the module) it is in."""
    owner: dict[ast.AST, ast.AST] = {}

    def visit(node: ast.AST, scope: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            owner[child] = scope
            visit(child, child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else scope)

    visit(tree, tree)
    return owner


def _assigned(scope: ast.AST, name: str) -> list[ast.expr]:
    """The values assigned to a plain name in a scope (not counting nested functions)."""
    values = []
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    values.append(node.value)
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for t, v in zip(target.elts, node.value.elts, strict=False):
                        if isinstance(t, ast.Name) and t.id == name:
                            values.append(v)
    return values


def _functions(module: ast.Module, name: str) -> list[ast.FunctionDef]:
    """Functions (or methods) of this module with this name."""
    return [n for n in ast.walk(module) if isinstance(n, ast.FunctionDef) and n.name == name]


def _returns(func: ast.FunctionDef) -> list[ast.expr]:
    return [n.value for n in ast.walk(func) if isinstance(n, ast.Return) and n.value is not None]


def _classify(expr: ast.expr, scope: ast.AST, module: ast.Module, depth: int = 0) -> list[tuple[str, str]]:
    """What program an argv (or its first element) runs: ("literal"|"resolved"|"dynamic", text).

    Follows local assignments and the return values of this module's own functions.
    """
    if depth > 8:
        return [("dynamic", ast.unparse(expr))]
    again = lambda e, sc=scope: _classify(e, sc, module, depth + 1)  # noqa: E731
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [("literal", expr.value)]
    if isinstance(expr, ast.List | ast.Tuple):
        if not expr.elts:
            return [("empty", "")]
        found = again(expr.elts[0])
        if any(kind == "empty" for kind, _ in found) and len(expr.elts) > 1:
            # a prefix that may be empty (runuser only as root): then the next element runs
            found = [f for f in found if f[0] != "empty"] + again(expr.elts[1])
        return found
    if isinstance(expr, ast.Starred):
        return again(expr.value)
    if isinstance(expr, ast.BoolOp):
        return [r for v in expr.values for r in again(v)]
    if isinstance(expr, ast.IfExp):
        return again(expr.body) + again(expr.orelse)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return again(expr.left)
    if isinstance(expr, ast.Call):
        name = _name(expr.func)
        if name in _RESOLVERS and expr.args and isinstance(expr.args[0], ast.Constant):
            return [("resolved", expr.args[0].value)]
        local = name.removeprefix("self.")
        funcs = _functions(module, local) if local.isidentifier() else []
        if funcs:
            return [r for f in funcs for v in _returns(f) for r in again(v, f)]
    if isinstance(expr, ast.Name):
        values = _assigned(scope, expr.id) or (_assigned(module, expr.id) if scope is not module else [])
        if values:
            return [r for v in values for r in again(v)]
    return [("dynamic", ast.unparse(expr))]


def run_sites() -> list[tuple[str, int, str, str]]:
    """(file, line, kind, program-or-expression) of every place the code runs an external program."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel.startswith(IMAGE_CONTENT):
            continue
        module = ast.parse(path.read_text(), filename=rel)
        owner = _scopes(module)
        for node in ast.walk(module):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            first = node.args[0] if node.args else None
            if name in ("os.execve", "os.execv", "os.execvp", "os.execvpe", "asyncio.create_subprocess_exec"):
                target = first
            elif name in _RUNNERS:
                target = first
            elif (name not in _NOT_ARGV and isinstance(first, ast.List) and first.elts
                  and (isinstance(first.elts[0], ast.Constant)
                       or (isinstance(first.elts[0], ast.Call) and _name(first.elts[0].func) in _RESOLVERS))):
                target = first  # a helper given a literal argv (e.g. a module's own _run)
            else:
                continue
            if target is None:
                continue
            for kind, what in _classify(target, owner.get(node, module), module):
                if kind == "empty":
                    continue
                found.append((rel, node.lineno, kind, what))
    return found


def resolver_arguments() -> list[tuple[str, int, str]]:
    """Every literal program name given to debian.need/which/need_all (file, line, name)."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        module = ast.parse(path.read_text())
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and _name(node.func) in ("debian.need", "debian.which",
                                                                   "debian.need_all"):
                for arg in node.args:
                    consts = [arg] if isinstance(arg, ast.Constant) else getattr(arg, "elts", [])
                    found += [(rel, node.lineno, c.value) for c in consts if isinstance(c, ast.Constant)]
    return found


def test_every_program_the_code_runs_has_an_installer_entry() -> None:
    problems = []
    for rel, line, kind, what in run_sites():
        where = f"{rel}:{line}"
        if kind == "literal" and what not in debian.BASE and (rel, what) not in LITERAL_OK:
            hint = ("run it as debian.need(...)" if what in debian.COMMANDS else
                    "add it to debian.COMMANDS with its Debian package (or to BASE if every Debian has it)")
            problems.append(f"{where}: runs `{what}` by name; {hint}")
        elif kind == "resolved" and what not in {**debian.COMMANDS, **debian.BASE, **debian.PREREQUISITES}:
            problems.append(f"{where}: `{what}` has no installer entry in debian.COMMANDS")
        elif kind == "dynamic" and (rel, what) not in DYNAMIC:
            problems.append(f"{where}: runs `{what}`, which this test cannot resolve: resolve it through "
                            "debian.need() or add it to DYNAMIC with what it runs and who installs it")
    for rel, line, name in resolver_arguments():
        if name not in debian.COMMANDS and name not in debian.BASE:
            problems.append(f"{rel}:{line}: debian.need/which({name!r}) is not in debian.COMMANDS")
    assert not problems, "\n".join(problems)


def test_no_stale_dynamic_entries() -> None:
    seen = {(rel, what) for rel, _, kind, what in run_sites() if kind == "dynamic"}
    assert set(DYNAMIC) <= seen, f"DYNAMIC entries no code has any more: {sorted(set(DYNAMIC) - seen)}"


def test_the_scan_sees_the_programs_the_cluster_and_stack_run() -> None:
    """The parser is not blind: the programs we know the code runs are among those it found."""
    names = {what for _, _, kind, what in run_sites() if kind in ("literal", "resolved")}
    names |= {name for _, _, name in resolver_arguments()}
    assert {"iptables", "iptables-save", "ip", "ctr", "containerd", "buildah", "debootstrap", "etcd",
            "redis-server", "docker-registry", "umount", "nsenter", "tar", "mvn", "go", "ss"} <= names


def test_every_declared_program_has_a_package() -> None:
    servers = [*registry.all_servers(), *components.node_components()]
    declared = {c for s in servers for c in s.commands} | set(network.COMMANDS) | set(images.BUILDAH)
    assert declared <= set(debian.COMMANDS), declared - set(debian.COMMANDS)
    # what the programs we start run themselves (not visible in our source) is declared too
    by_name = {s.name: set(s.commands) for s in servers}
    assert {"iptables", "iptables-save", "iptables-restore", "conntrack"} <= by_name["kube-proxy"]
    assert {"runc", "bridge", "host-local", "loopback", "portmap", "sysctl"} <= by_name["containerd"]


def test_package_list_is_one_source_of_truth() -> None:
    pkgs = debian.packages()
    assert pkgs == sorted({d.package for d in debian.COMMANDS.values()})
    purge = debian.packages(purgeable=True)
    for kept in ("iproute2", "procps", "maven", "openjdk-17-jdk-headless"):  # requirements / base system
        assert kept in pkgs and kept not in purge
    assert {"iptables", "conntrack", "containerd", "runc", "buildah", "postgresql"} <= set(purge)
    assert not set(debian.BASE) & set(debian.COMMANDS)


def test_cluster_up_installs_the_node_packages_before_running_anything(monkeypatch, tmp_path) -> None:
    """The regression of issue 11: network set-up ran iptables before the step that installed it."""
    events: list[str] = []
    monkeypatch.setattr(lifecycle, "_require_root", lambda: None)
    monkeypatch.setattr(lifecycle.stack, "state_lock", lambda ctx: contextlib.nullcontext())
    monkeypatch.setattr(lifecycle.debian, "need_all", lambda cmds: events.append("install " + " ".join(cmds)))
    monkeypatch.setattr(lifecycle.stack, "up", lambda ctx, servers: events.append("stack up"))
    monkeypatch.setattr(lifecycle.network, "up", lambda ctx: events.append("network up"))
    monkeypatch.setattr(lifecycle.components, "apply", lambda ctx, docs: events.append("apply"))
    monkeypatch.setattr(lifecycle.components.Containerd, "cni_bin_dir",
                        lambda self, ctx: events.append("cni plugins"))
    monkeypatch.setattr(lifecycle.coredns, "up", lambda ctx: events.append("coredns up"))
    monkeypatch.setattr(lifecycle.storage, "up", lambda ctx: events.append("storage up"))
    lifecycle.up(Context(state=tmp_path / "state", cache=tmp_path / "cache"))
    assert events[0].startswith("install ")
    first = set(events[0].split()[1:])
    assert {"ip", "iptables", "iptables-save", "containerd", "runc", "conntrack", "docker-registry"} <= first
    assert events[1:] == ["stack up", "network up", "apply", "cni plugins", "stack up", "coredns up",
                          "storage up"]


if __name__ == "__main__":  # `python tests/stack/test_commands_unit.py`: the table this test checks
    for rel, line, _kind, what in sorted(run_sites(), key=lambda r: (r[3], r[0], r[1])):
        source = (debian.COMMANDS[what].package if what in debian.COMMANDS else
                  f"base ({debian.BASE[what]})" if what in debian.BASE else
                  "prerequisite" if what in debian.PREREQUISITES else DYNAMIC.get((rel, what), "?"))
        print(f"{what:<48} {rel}:{line:<5} {source}")
