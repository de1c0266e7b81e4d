"""`make bench`: what a build costs, how it grows with the number of secrets, and how close
it comes to the floor (the same Vault requests from the plainest client).

Starts its own OpenBao dev server. Prints a table and writes bench/results.md and
bench/results.png. Every figure comes from this run on this machine.
"""

from __future__ import annotations

import argparse
import compileall
import copy
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from openbao_server import OpenBao, start_openbao  # noqa: E402
from peak_rss import run_measured  # noqa: E402
from secret_contract import yaml_codec  # noqa: E402

SCALES = [10, 100, 1000, 5000]
RENDER_SCALES = [10_000, 40_000, 100_000]
LARGE_SCALES = [10_000, 40_000]  # first runs against OpenBao, with --large
COLD_ROUNDS = 15  # interleaved rounds of the cold-start commands
WORKERS = 8  # the function's default (store.DEFAULT_WORKERS)
CONNECTIONS = [8, 16, 32]  # the floor's connection counts compared
PYTHON = sys.executable
FUNCTION = [PYTHON, "-m", "secret_contract"]


@dataclass
class Run:
    wall: float  # seconds
    peak_mb: float
    requests: dict[str, int]
    versions: int = 0
    stderr: str = ""


def timed(cmd: list[str], stdin: str = "", env: dict[str, str] | None = None) -> Run:
    """Wall time and peak RSS of one process, both from the kernel's accounting (wait4)."""
    ran = run_measured(cmd, stdin, env)
    if ran.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({ran.returncode}):\n{ran.stderr[-3000:]}")
    return Run(ran.wall, ran.peak_mb, _request_counts(ran.stderr), stderr=ran.stderr)


def _request_counts(stderr: str) -> dict[str, int]:
    for line in stderr.splitlines():
        if "Vault requests:" in line:
            text = line.split("Vault requests:", 1)[1].split("(stats)")[0]
            return {m: int(n) for m, n in (part.split() for part in text.split(",") if part.strip() != "none")}
    return {}


def contract(n: int, extra_key: bool = False) -> dict[str, Any]:
    """n secrets of five keys (two static, three generated) over ten namespaces."""
    data = [
        {"key": "username", "value": "app"},
        {"key": "host", "value": "db.internal"},
        {"key": "password", "generate": "password"},
        {"key": "token", "generate": "token"},
        {"key": "signing-key", "generate": "hex", "length": 64},
    ]
    if extra_key:
        data.append({"key": "api-key", "generate": "uuid"})
    return {
        "apiVersion": "hostk8s.io/v1",
        "kind": "SecretContract",
        "metadata": {"name": f"bench-{n}"},
        "spec": {
            "secrets": [
                {"name": f"secret-{i}", "namespace": f"ns-{i % 10}", "data": copy.deepcopy(data)} for i in range(n)
            ]
        },
    }


def resource_list(obj: dict[str, Any]) -> str:
    """The ResourceList kustomize sends a generator."""
    item = copy.deepcopy(obj)
    item["metadata"]["annotations"] = {"config.kubernetes.io/local-config": "true"}
    return yaml_codec.dump(
        {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [item], "functionConfig": item}
    )


class Floor:
    """The plainest client: http.client keep-alive connections on a thread pool, no
    validation, no YAML, no hvac."""

    def __init__(self, server: OpenBao) -> None:
        host, port = server.addr.removeprefix("http://").split(":")
        self.host, self.port, self.token = host, int(port), server.token
        self.local = threading.local()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port)
        headers = {"X-Vault-Token": self.token}
        if method == "PATCH":
            headers["Content-Type"] = "application/merge-patch+json"
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status

    def run(self, mount: str, n: int, write: bool, workers: int = WORKERS) -> float:
        """The floor of a run over n secrets: one read per secret, and for a run that writes,
        one data write per secret. Nothing else: no ownership record, no process, no YAML."""
        paths = [f"floor/ns-{i % 10}/secret-{i}" for i in range(n)]
        payload = {"username": "app", "host": "db.internal", "password": "x" * 32, "token": "y" * 32, "k": "z" * 64}
        self.local = threading.local()  # connections of this pool's threads only
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda p: self._call("GET", f"/v1/{mount}/data/{p}"), paths))
            if write:
                list(pool.map(lambda p: self._call("POST", f"/v1/{mount}/data/{p}", {"data": payload}), paths))
        return time.perf_counter() - start

    def recorded_writes(self, mount: str, n: int, workers: int = WORKERS) -> float:
        """What a first run cannot do with less: each new secret's data write (check-and-set 0)
        and then its ownership record (a merge patch of its custom metadata), which KV v2 keeps
        apart from the data. The floor's read and write are one request fewer of this kind."""
        paths = [f"floor/ns-{i % 10}/secret-{i}" for i in range(n)]
        payload = {"username": "app", "host": "db.internal", "password": "x" * 32, "token": "y" * 32, "k": "z" * 64}
        record = {"custom_metadata": {"secret-contract.hostk8s.io/owner": "bench", "digest": "0" * 16}}

        def one(path: str) -> None:
            self._call("POST", f"/v1/{mount}/data/{path}", {"data": payload, "options": {"cas": 0}})
            self._call("PATCH", f"/v1/{mount}/metadata/{path}", record)

        self.local = threading.local()
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, paths))
        return time.perf_counter() - start

    def versions(self, mount: str, prefix: str) -> int:
        """Sum of current_version over every secret under prefix (KV versions created)."""
        total = 0
        status_ok = 200

        def listing(path: str) -> list[str]:
            conn = http.client.HTTPConnection(self.host, self.port)
            conn.request("LIST", f"/v1/{mount}/metadata/{path}", headers={"X-Vault-Token": self.token})
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            return json.loads(body)["data"]["keys"] if resp.status == status_ok else []

        leaves: list[str] = []
        stack = [prefix]
        while stack:
            here = stack.pop()
            for key in listing(here):
                (stack if key.endswith("/") else leaves).append(here + key)

        def version(path: str) -> int:
            conn = getattr(self.local, "conn", None) or http.client.HTTPConnection(self.host, self.port)
            self.local.conn = conn
            conn.request("GET", f"/v1/{mount}/metadata/{path}", headers={"X-Vault-Token": self.token})
            resp = conn.getresponse()
            return int(json.loads(resp.read())["data"]["current_version"])

        with ThreadPoolExecutor(WORKERS) as pool:
            total = sum(pool.map(version, leaves))
        return total


def enable_mount(server: OpenBao, mount: str) -> None:
    server.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})


def interleaved(runs: list[tuple[str, list[str], str, dict[str, str]]], rounds: int) -> dict[str, Run]:
    """Each command once per round, in turn, `rounds` times: the median of each. A machine
    that slows down for a while slows every command alike, not the one measured then."""
    walls: dict[str, list[Run]] = {name: [] for name, *_ in runs}
    for _ in range(rounds):
        for name, cmd, stdin, env in runs:
            walls[name].append(timed(cmd, stdin, env))
    return {
        name: Run(statistics.median(r.wall for r in got), statistics.median(r.peak_mb for r in got), got[0].requests)
        for name, got in walls.items()
    }


def cold_start(server: OpenBao, env: dict[str, str], tmp: Path) -> list[tuple[str, float, float]]:
    """What every user pays on every build: the function's start for a small contract, and a
    whole kubectl kustomize build of the sample app against the same build with its output
    checked in."""
    sample = yaml_codec.load((ROOT / "kustomize-examples/sample-app/hostk8s.secrets.yaml").read_text())
    stdin = resource_list(sample)
    timed(FUNCTION, stdin, env)  # fill Vault (and the schema cache); the measured runs are no-op builds
    uncached = {**env, "SECRET_CONTRACT_SCHEMA_CACHE": "false"}
    plugin_home = tmp / "plugins"
    subprocess.run([*FUNCTION, "install-plugin", "--dir", str(plugin_home)], check=True, capture_output=True)
    kenv = {**env, "KUSTOMIZE_PLUGIN_HOME": str(plugin_home)}
    app = ROOT / "kustomize-examples/sample-app"
    build = ["kubectl", "kustomize", "--enable-alpha-plugins", str(app)]
    checked_in = tmp / "checked-in"
    checked_in.mkdir()
    output = subprocess.run(build, env=kenv, capture_output=True, text=True, check=True).stdout
    (checked_in / "rendered.yaml").write_text(output)
    (checked_in / "kustomization.yaml").write_text("resources:\n  - rendered.yaml\n")
    runs = [
        ("python -c pass", [PYTHON, "-c", "pass"], "", env),
        ("import yaml, jsonschema, hvac", [PYTHON, "-c", "import yaml, jsonschema, hvac"], "", env),
        ("function, sample-app, Vault holding it", FUNCTION, stdin, env),
        ("function, the same, schema not cached", FUNCTION, stdin, uncached),
        ("kubectl kustomize sample-app (legacy plugin)", build, "", kenv),
        ("kubectl kustomize, the same output checked in", ["kubectl", "kustomize", str(checked_in)], "", env),
    ]
    measured = interleaved(runs, COLD_ROUNDS)
    return [(name, measured[name].wall * 1000, measured[name].peak_mb) for name, *_ in runs]


def scale(server: OpenBao, env: dict[str, str], floor: Floor, pairs: int = 1) -> list[dict[str, Any]]:
    """Each scale `pairs` times over (a fresh mount each time), each run followed by its floor:
    the figures are medians, the ratio the median of the pairs' ratios, which holds when other
    work on the machine slows one pair and not the next."""
    rows = []
    for n in SCALES:
        kinds = (("first", contract(n)), ("no-op", contract(n)), ("add key", contract(n, extra_key=True)))
        measured: dict[str, list[tuple[Run, float]]] = {kind: [] for kind, _ in kinds}
        for pair in range(pairs):
            mount, floor_mount = f"bench-{n}-{pair}", f"floor-{n}-{pair}"
            enable_mount(server, mount)
            enable_mount(server, floor_mount)
            run_env = {**env, "SECRET_CONTRACT_VAULT_MOUNT": mount}
            before = 0
            for kind, obj in kinds:
                run = timed(FUNCTION, resource_list(obj), run_env)
                after = floor.versions(mount, "")
                run.versions, before = after - before, after
                floor_time = floor.run(floor_mount, n, write=kind != "no-op")
                measured[kind].append((run, floor_time))
                ratio = run.wall / floor_time if floor_time else float("nan")
                print(f"  {n:>5} {kind:<8} {run.wall:7.2f}s  floor {floor_time:6.2f}s  ratio {ratio:.2f}", flush=True)
        for kind, _ in kinds:
            runs = measured[kind]
            first_run = runs[0][0]
            rows.append(
                {
                    "secrets": n,
                    "run": kind,
                    "wall_s": statistics.median(r.wall for r, _ in runs),
                    "requests": sum(first_run.requests.values()),
                    "by_method": first_run.requests,
                    "versions": max(r.versions for r, _ in runs),
                    "writes": max(r.requests.get("POST", 0) + r.requests.get("PATCH", 0) for r, _ in runs),
                    "peak_mb": max(r.peak_mb for r, _ in runs),
                    "floor_s": statistics.median(t for _, t in runs),
                    "ratio": statistics.median(r.wall / t if t else float("nan") for r, t in runs),
                }
            )
    return rows


# Where a small build's imports go, by the module's top-level name (first match wins).
IMPORT_GROUPS = (
    ("secret_contract (its modules' own code: classes, dataclasses, patterns)", ("secret_contract",)),
    ("PyYAML (its regular expressions are compiled at import)", ("yaml", "_yaml")),
    ("http.client, email, ssl, socket (the Vault transport)", ("http", "email", "ssl", "_ssl", "socket", "_socket")),
    ("jsonschema and what it loads", ("jsonschema", "referencing", "rpds", "attr", "attrs")),
    ("dataclasses, inspect, typing, re, enum", ("dataclasses", "inspect", "typing", "re", "enum", "ast", "dis")),
)


def import_profile(env: dict[str, str], runs: int = 5) -> tuple[float, list[tuple[str, float]]]:
    """`python -X importtime` of the function's small no-op build (schema cached): each
    module's own import time, least of `runs` runs, summed by group; and the total in ms."""
    sample = yaml_codec.load((ROOT / "kustomize-examples/sample-app/hostk8s.secrets.yaml").read_text())
    stdin = resource_list(sample)
    least: dict[str, int] = {}
    for _ in range(runs):
        done = subprocess.run(
            [*FUNCTION[:1], "-X", "importtime", *FUNCTION[1:]], input=stdin, env=env, capture_output=True, text=True
        )
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
                continue
            own, _, name = line.removeprefix("import time:").split("|")
            module = name.strip()
            least[module] = min(least.get(module, 1 << 62), int(own))
    groups: dict[str, float] = {}
    for module, micros in least.items():
        top = module.split(".")[0]
        group = next((name for name, tops in IMPORT_GROUPS if top in tops), "the rest of the standard library")
        groups[group] = groups.get(group, 0.0) + micros / 1000
    return sum(groups.values()), sorted(groups.items(), key=lambda kv: -kv[1])


def render_scale(env: dict[str, str], tmp: Path) -> list[tuple[int, float, float]]:
    """`secret-contract render` of one contract of n secrets, no Vault: seconds and peak MB.
    The schema cache is empty for each (a first build of that contract)."""
    render_env = {k: v for k, v in env.items() if not k.startswith("VAULT_")}
    rows = []
    for n in RENDER_SCALES:
        path = tmp / f"render-{n}" / "hostk8s.secrets.yaml"
        path.parent.mkdir()
        path.write_text(yaml_codec.dump(contract(n)))
        run = timed([*FUNCTION, "render", str(path)], "", render_env)
        rows.append((n, run.wall, run.peak_mb))
        print(f"  render {n:>6} {run.wall:7.2f}s {run.peak_mb:6.0f} MB", flush=True)
    return rows


def large_first_runs(server: OpenBao, env: dict[str, str]) -> list[tuple[int, float, float]]:
    """A first run of LARGE_SCALES secrets against OpenBao: seconds and peak MB."""
    rows = []
    for n in LARGE_SCALES:
        mount = f"large-{n}"
        enable_mount(server, mount)
        run = timed(FUNCTION, resource_list(contract(n)), {**env, "SECRET_CONTRACT_VAULT_MOUNT": mount})
        rows.append((n, run.wall, run.peak_mb))
        print(f"  first {n:>6} {run.wall:7.2f}s {run.peak_mb:6.0f} MB", flush=True)
    return rows


def connections(server: OpenBao, floor: Floor, n: int = 5000) -> list[tuple[int, float, float, float]]:
    """The floor of a first run and of a no-op run over n secrets, and a first run's recorded
    writes, on 8, 16 and 32 keep-alive connections: how many requests in flight OpenBao serves
    best on this machine."""
    rows = []
    for workers in CONNECTIONS:
        mount, recorded = f"connections-{workers}", f"recorded-{workers}"
        enable_mount(server, mount)
        enable_mount(server, recorded)
        first = floor.run(mount, n, write=True, workers=workers)
        noop = floor.run(mount, n, write=False, workers=workers)
        writes = floor.recorded_writes(recorded, n, workers=workers)
        rows.append((workers, first, noop, writes))
        print(
            f"  {workers:>2} connections: first {first:6.2f}s  no-op {noop:6.2f}s  recorded {writes:6.2f}s", flush=True
        )
    return rows


# A few plain scalars whose types differ between YAML readers, a tag, and a date: what a
# parser must return for them to stand in for yaml_codec (kyaml's typing, tags kept).
TYPING_PROBE = "mode: 0644\nsize: 1_000\nflag: yes\nwhen: 2024-01-01\nref: !Ref x\nquoted: '0644'\n"


def parsers(n: int = 5000) -> list[tuple[str, float | None, str]]:
    """Seconds to parse the ResourceList a kustomize build of n secrets sends (best of three,
    in this process) by each parser, and whether it types scalars as kyaml does. A parser
    that is not installed is listed as such (`make bench` installs them: the bench extra)."""
    text = resource_list(contract(n))
    probe = yaml_codec.load(TYPING_PROBE)

    def best(parse: Any) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            parse()
            times.append(time.perf_counter() - start)
        return min(times)

    def typed(doc: dict[str, Any]) -> list[tuple[str, str, Any]]:
        return [(key, type(value).__name__, value) for key, value in doc.items()]

    def typing(parse: Any) -> str:
        try:
            same = typed(parse(TYPING_PROBE)) == typed(probe)
            return "kyaml's typing" if same else "other typing (0644, 1_000, dates or tags)"
        except Exception as exc:
            return f"refuses the probe ({type(exc).__name__})"

    rows: list[tuple[str, float | None, str]] = [
        (
            "yaml_codec.load_with_spans (libyaml events)",
            best(lambda: yaml_codec.load_with_spans(text)),
            "the reference",
        ),
        ("libyaml event stream alone (PyYAML's C parser)", best(lambda: _drain_events(text)), "no objects"),
    ]
    try:
        import ryml  # type: ignore[import-not-found,import-untyped]
    except ImportError:
        rows.append(("rapidyaml", None, "not installed"))
    else:
        rows.append(
            ("rapidyaml: parse to its own tree", best(lambda: ryml.parse_in_arena(text.encode())), "no objects")
        )
        rows.append(
            (
                "rapidyaml: tree walked into Python objects",
                best(lambda: _ryml_objects(ryml, text)),
                typing(lambda t: _ryml_objects(ryml, t)) + "; no source positions in its Python API",
            )
        )
    try:
        import yaml_rs  # type: ignore[import-not-found,import-untyped]
    except ImportError:
        rows.append(("yaml-rs", None, "not installed"))
    else:
        rows.append(("yaml-rs: loads", best(lambda: yaml_rs.loads(text)), typing(yaml_rs.loads) + "; no positions"))
    for name, seconds, note in rows:
        shown = f"{seconds * 1000:7.0f} ms" if seconds is not None else "      -"
        print(f"  {shown}  {name}: {note}", flush=True)
    return rows


def _drain_events(text: str) -> None:
    parser = yaml_codec.yaml.CSafeLoader(text)
    try:
        while parser.get_event() is not None:
            pass
    finally:
        parser.dispose()


def _ryml_objects(ryml: Any, text: str) -> Any:
    """The plainest walk of rapidyaml's tree into dicts and lists, plain scalars typed by
    yaml_codec's resolver, quoted ones kept as strings (tags are not looked at)."""
    from secret_contract.yaml_resolve import resolve_plain

    tree = ryml.parse_in_arena(text.encode())

    def node(i: int) -> Any:
        if tree.is_map(i):
            return {bytes(tree.key(c)).decode(): node(c) for c in ryml.children(tree, i)}
        if tree.is_seq(i):
            return [node(c) for c in ryml.children(tree, i)]
        raw = tree.val(i)
        value = bytes(raw).decode() if raw is not None else ""
        return value if tree.is_val_quoted(i) else resolve_plain(value)

    return node(tree.root_id())


# Where a run's time goes, by the file a function lives in (first match wins).
PHASES = (
    ("waiting for Vault (worker threads)", ("threading.py", "concurrent/futures", "queue.py")),
    ("Vault transport", ("vault_http.py", "vault.py", "http/client.py", "socket.py", "ssl.py", "json/")),
    ("YAML in and out", ("yaml/", "yaml_codec.py", "krm.py")),
    ("contract validation", ("jsonschema", "referencing", "contract.py", "rules", "validation_cache.py")),
    (
        "plan and settings",
        (
            "plan.py",
            "declarations.py",
            "resolution.py",
            "model.py",
            "layout.py",
            "ownership.py",
            "settings.py",
            "sync.py",
            "store.py",
            "policy.py",
        ),
    ),
    ("generating values", ("generators.py", "secrets.py", "random.py", "base64.py")),
    ("ExternalSecrets", ("externalsecret.py", "pipeline.py")),
    ("start and imports", ("<frozen", "importlib", "site.py")),
)


def client_cpu(server: OpenBao, n: int = 2000) -> tuple[float, float]:
    """CPU time of one read on the client, in microseconds: the floor's plain http.client
    request, then the function's store (transport, retries, deadline, JSON, the entry). Reads
    run one after another on one thread (`time.thread_time`), so what the server and other
    processes do is not counted. On two cores the client's CPU and OpenBao's share the
    machine, so each microsecond here shows in the wall time of a run."""
    from secret_contract import vault, vault_config

    mount = "client-cpu"
    enable_mount(server, mount)
    floor = Floor(server)
    floor.run(mount, n, write=True)
    paths = [f"/v1/{mount}/data/floor/ns-{i % 10}/secret-{i}" for i in range(n)]
    config = vault_config.VaultConfig.from_env({"VAULT_ADDR": server.addr, "VAULT_TOKEN": server.token})
    assert config is not None
    store = vault.VaultStore(config)
    floor.local = threading.local()
    raw: list[float] = []
    ours: list[float] = []
    for _ in range(3):
        start = time.thread_time()
        for path in paths:
            floor._call("GET", path)
        raw.append(time.thread_time() - start)
        start = time.thread_time()
        for path in paths:
            store.read(mount, path.removeprefix(f"/v1/{mount}/data/"))
        ours.append(time.thread_time() - start)
    return min(raw) * 1e6 / n, min(ours) * 1e6 / n


# What a render holds, by the step that made it (the module that allocated it).
MEMORY_STEPS = (
    ("the input document (YAML loader)", ("yaml_codec", "yaml_resolve", "inputs", "krm.py")),
    ("contract model", ("contract.py",)),
    ("effective settings (resolution)", ("resolution", "layout")),
    ("ExternalSecret manifests", ("externalsecret",)),
    ("Vault targets and declarations", ("declarations", "model.py")),
)


def render_memory(n: int = 10_000) -> list[tuple[str, float]]:
    """Bytes per secret a render of n secrets holds before it prints, by step: `tracemalloc`
    of `pipeline.render` in this process."""
    import tracemalloc

    from secret_contract import inputs, pipeline

    with tempfile.TemporaryDirectory() as tmpdir:
        path = Path(tmpdir) / "hostk8s.secrets.yaml"
        path.write_text(yaml_codec.dump(contract(n)))
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        rl = inputs.read_files([str(path)])
        rendered = pipeline.render(rl, {})
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
    assert not rendered.failed
    held: dict[str, float] = {}
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename
        step = next((label for label, parts in MEMORY_STEPS if any(p in name for p in parts)), "other")
        held[step] = held.get(step, 0.0) + stat.size_diff / n
    del rl, rendered
    return sorted(held.items(), key=lambda kv: -kv[1])


def profile(server: OpenBao, env: dict[str, str], tmp: Path, n: int = 5000) -> dict[str, dict[str, float]]:
    """Share of the main thread's time per phase, for a first run and a no-op run of n
    secrets and a render of RENDER_SCALES[0] (cProfile sees the main thread only: time the
    workers spend on Vault requests shows as waiting)."""
    import pstats

    mount = f"profile-{n}"
    enable_mount(server, mount)
    text = resource_list(contract(n))
    big = RENDER_SCALES[0]
    rendered = tmp / f"profile-render-{big}" / "hostk8s.secrets.yaml"
    rendered.parent.mkdir()
    rendered.write_text(yaml_codec.dump(contract(big)))
    render_env = {k: v for k, v in env.items() if not k.startswith("VAULT_")}
    runs = (
        ("first", [], text, {**env, "SECRET_CONTRACT_VAULT_MOUNT": mount}),
        ("no-op", [], text, {**env, "SECRET_CONTRACT_VAULT_MOUNT": mount}),
        ("render", ["render", str(rendered)], "", render_env),
    )
    shares: dict[str, dict[str, float]] = {}
    for kind, args, stdin, run_env in runs:
        out = tmp / f"profile-{kind}.out"
        subprocess.run(
            [PYTHON, "-m", "cProfile", "-o", str(out), "-m", "secret_contract", *args],
            input=stdin,
            env=run_env,
            capture_output=True,
            text=True,
            check=True,
        )
        stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
        spent: dict[str, float] = {}
        for (filename, _, function), (_, _, self_time, _, callers) in stats.items():
            phase = _phase(filename, function, callers)
            spent[phase] = spent.get(phase, 0.0) + self_time
        total = sum(spent.values()) or 1.0
        shares[kind] = {phase: t / total for phase, t in spent.items()}
    return shares


def _phase(filename: str, function: str, callers: dict[tuple[str, int, str], Any]) -> str:
    """The phase of a profiled function; a built-in one (`~`) counts where it was called from,
    except lock waits (worker threads) and socket reads (the transport)."""
    if filename == "~":
        if "_thread.lock" in function:
            return PHASES[0][0]
        if "_socket" in function or "_ssl" in function:
            return PHASES[1][0]
        if not callers:
            return "other"
        caller = max(callers, key=lambda c: callers[c][3])
        filename = caller[0]
    return next((name for name, parts in PHASES if any(p in filename for p in parts)), "other")


Check = tuple[str, bool | None, str]  # what, met (None: not measured in this run), the figure


def targets(f: Figures) -> list[Check]:
    rows, cold, renders = f.rows, f.cold, f.renders
    by = {(r["secrets"], r["run"]): r for r in rows}
    ms = {name: value for name, value, _ in cold}
    checks: list[Check] = []
    for n, bound in ((5000, 1.5), (1000, 2.0)):
        for kind in ("first", "no-op"):
            ratio = by[(n, kind)]["ratio"]
            checks.append((f"{kind} at {n:,}: at most {bound}x its floor", ratio <= bound, f"{ratio:.2f}x"))
    build, checked_in = (
        ms["kubectl kustomize sample-app (legacy plugin)"],
        ms["kubectl kustomize, the same output checked in"],
    )
    checks.append(
        ("small build: at most 2.5x the checked-in build", build <= 2.5 * checked_in, f"{build / checked_in:.2f}x")
    )
    own = ms["function, sample-app, Vault holding it"] - ms["python -c pass"]
    checks.append(
        ("function's own cold start (schema cached), imports included, at most 60 ms", own <= 60, f"{own:.0f} ms")
    )
    uncached = ms["function, the same, schema not cached"] - ms["python -c pass"]
    checks.append(
        ("the same with the schema not cached (first build of a contract)", uncached < 80, f"{uncached:.0f} ms")
    )
    first = by[(5000, "first")]
    per_secret = first["requests"] / first["secrets"]
    checks.append(
        (
            "first run: requests per new secret (minimum 2: data write, ownership record)",
            per_secret <= 2.05,
            f"{per_secret:.2f}",
        )
    )
    noop = [r for r in rows if r["run"] == "no-op"]
    no_writes = all(r["versions"] == 0 and r["writes"] == 0 for r in noop)
    checks.append(("no-op runs create no version and send no write", no_writes, "0 writes" if no_writes else "writes!"))
    for kind in ("first", "no-op", "add key"):
        growth = by[(5000, kind)]["wall_s"] / by[(1000, kind)]["wall_s"]
        checks.append((f"{kind}: 5,000 within 6x of 1,000 (linear)", growth <= 6, f"{growth:.2f}x"))
    peak = max(r["peak_mb"] for r in rows if r["secrets"] == 5000)
    checks.append(("peak memory at 5,000 secrets at most 150 MB", peak <= 150, f"{peak:.0f} MB"))
    render = {n: (wall, mb) for n, wall, mb in renders}
    growth = render[40_000][0] / render[10_000][0]
    checks.append(("render: 40,000 within 4.5x of 10,000 (linear)", growth <= 4.5, f"{growth:.2f}x"))
    wall, mb = render[100_000]
    checks.append(("render: 100,000 secrets in under 20 s", wall < 20, f"{wall:.1f} s"))
    checks.append(("render: 100,000 secrets in under 500 MB", mb < 500, f"{mb:.0f} MB"))
    what = "first run: 40,000 within 4.5x of 10,000 (linear)"
    if f.large:
        large = {n: wall for n, wall, _ in f.large}
        growth = large[40_000] / large[10_000]
        checks.append((what, growth <= 4.5, f"{growth:.2f}x"))
    else:
        checks.append((what, None, "not measured (`bench.py --large`)"))
    return checks


DEPLOY_TESTS = [
    "tests/cluster/test_rotation.py",
    "tests/cluster/test_external_artifact.py::test_a_pushed_commit_reaches_the_cluster_as_secrets_holding_vaults_values",
]
DEPLOY_TIMINGS = {
    "publish_to_secret_seconds": "`publish` -> Secret present (Flux reconcile, then ESO)",
    "rotate_to_secret_seconds": "`rotate` -> new value in the Secret (ESO refresh forced)",
    "external_artifact_push_to_secret_seconds": "git push -> Secret present through the ExternalArtifact controller",
}


def deploy_timings() -> dict[str, float]:
    """The timings the cluster tests record (tests/cluster/conftest.py `record`), measured on
    the local control plane (reused when `make cluster-up` runs one, else started and stopped)."""
    with tempfile.TemporaryDirectory() as tmpdir:
        # Not in .cluster: stopping a control plane the tests started removes that folder.
        timings = Path(tmpdir) / "timings.json"
        done = subprocess.run(
            [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *DEPLOY_TESTS],
            cwd=ROOT,
            env={**os.environ, "CLUSTER_TIMINGS": str(timings)},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not timings.exists():
            print(done.stdout[-3000:], file=sys.stderr)
            return {}
        found: dict[str, float] = json.loads(timings.read_text())
    return found


@dataclass
class Figures:
    """Everything one run of the bench measured."""

    cold: list[tuple[str, float, float]]
    rows: list[dict[str, Any]]
    renders: list[tuple[int, float, float]]
    links: list[tuple[int, float, float, float]]  # connections; first-run, no-op floor; recorded writes
    parsed: list[tuple[str, float | None, str]]
    shares: dict[str, dict[str, float]]
    imports: tuple[float, list[tuple[str, float]]]  # a small build's import time: total ms, by group
    deploy: dict[str, float] | None  # None: not measured (--no-deploy)
    large: list[tuple[int, float, float]]  # empty: not measured (no --large)
    pairs: int  # runs of each scale, each with its floor
    load: tuple[float, float]  # the 1-minute load average at the start and at the end
    client_cpu: tuple[float, float]  # CPU microseconds of one read: the floor's client, the function's store
    memory: list[tuple[str, float]]  # bytes per secret a render holds, by step


def report(f: Figures, checks: list[Check]) -> str:
    cold, rows, shares, deploy = f.cold, f.rows, f.shares, f.deploy or {}
    lines = [
        "# secret-contract benchmarks",
        "",
        f"Measured by `make bench` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, OpenBao dev server on loopback, {WORKERS} worker threads.",
        f"The load average (1 min) was {f.load[0]:.1f} at the start and {f.load[1]:.1f} at the end: ratios to",
        "the floor, measured in the same run, hold better than absolute times on a loaded machine.",
        "",
        f"## Cold start (median of {COLD_ROUNDS} rounds, the commands run in turn in each)",
        "",
        "| what | wall ms | peak MB |",
        "|---|---:|---:|",
        *[f"| {name} | {ms:.0f} | {mb:.0f} |" for name, ms, mb in cold],
        "",
        f"Of the function's own start, imports take about {f.imports[0]:.0f} ms (`python -X importtime`, each",
        "module's own time, least of 5 runs; importtime's own overhead included):",
        "",
        "| imports of a small build | ms |",
        "|---|---:|",
        *[f"| {name} | {ms:.1f} |" for name, ms in f.imports[1]],
        "",
        "## Scale (5 keys per secret: 2 static, 3 generated; 10 namespaces)",
        "",
        "The floor is the plainest client doing the least a run must: one read per secret, and for a",
        "run that writes, one data write per secret (GET then POST), from http.client keep-alive",
        "connections on the same number of threads, with no process start, validation or YAML. The",
        "first run's floor and the no-op run's floor are the two rows' `floor s`.",
        f"Each row is the median of {f.pairs} runs, each followed by its floor on a fresh mount; the ratio",
        "is the median of the runs' ratios to their own floor.",
        "",
        "| secrets | run | wall s | Vault requests | KV versions created | peak MB | floor s | ratio |",
        "|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        methods = ", ".join(f"{m} {n}" for m, n in sorted(r["by_method"].items())) or "0"
        lines.append(
            f"| {r['secrets']:,} | {r['run']} | {r['wall_s']:.2f} | {methods} | {r['versions']:,} | "
            f"{r['peak_mb']:.0f} | {r['floor_s']:.2f} | {r['ratio']:.2f} |"
        )
    lines += [
        "",
        "## Render (one contract of n secrets, no Vault, schema not cached)",
        "",
        "| secrets | wall s | peak MB |",
        "|---:|---:|---:|",
        *[f"| {n:,} | {wall:.2f} | {mb:.0f} |" for n, wall, mb in f.renders],
        "",
        "## First run at scale (`--large`)",
        "",
        "| secrets | wall s | peak MB |",
        "|---:|---:|---:|",
        *[f"| {n:,} | {wall:.2f} | {mb:.0f} |" for n, wall, mb in f.large],
        *([] if f.large else ["| not measured in this run | | |"]),
        "",
        "## Connections to OpenBao (the floor at 5,000 secrets)",
        "",
        "The last column is what a first run cannot do with less: per new secret, the data write",
        "and then the ownership record in its custom metadata (POST, then PATCH of the metadata).",
        "",
        "| connections | first-run floor s | no-op floor s | data write + ownership record s |",
        "|---:|---:|---:|---:|",
        *[f"| {n} | {first:.2f} | {noop:.2f} | {writes:.2f} |" for n, first, noop, writes in f.links],
        "",
        "## YAML parsers (the 5,000-secret ResourceList a kustomize build sends, best of 3)",
        "",
        "Besides speed, the loader must type plain scalars as kyaml does (`0644` is 420, `1_000` is",
        "1000, a date stays a string, `!Ref` is kept), report line and column on errors, and find where",
        "each item's text is, so items that pass through untouched are written back byte for byte.",
        "",
        "| parser | ms | keeps |",
        "|---|---:|---|",
        *[f"| {name} | {'-' if t is None else f'{t * 1000:.0f}'} | {note} |" for name, t, note in f.parsed],
        "",
        "## At deploy time (the local control plane: kube-apiserver, Flux, ESO; docs/cluster.md)",
        "",
        "| what | s |",
        "|---|---:|",
        *[f"| {text} | {deploy[key]:.1f} |" for key, text in DEPLOY_TIMINGS.items() if key in deploy],
    ]
    if f.deploy is None:
        lines.append("| not measured in this run (`bench.py --no-deploy`) | |")
    elif not deploy:
        lines.append("| not measured: the cluster tests failed (their output is above) | |")
    lines += ["", "## Targets", "", "| target | met | measured |", "|---|---|---|"]
    shown = {True: "yes", False: "NO", None: "-"}
    lines += [f"| {name} | {shown[ok]} | {value} |" for name, ok, value in checks]
    lines += [
        "",
        f"## Where the time goes (5,000 secrets; render of {RENDER_SCALES[0]:,}; cProfile of the main thread)",
        "",
        "Shares of the main thread's profiled time. The Vault requests run on worker threads, so",
        "their time shows here as waiting; the floor spends its whole time on those requests. What",
        "a run spends beyond waiting is its gap to the floor.",
        "",
        "| phase | first run | no-op run | render |",
        "|---|---:|---:|---:|",
    ]
    phases = [name for name, _ in PHASES] + ["other"]
    for phase in phases:
        first, noop, render = (shares[kind].get(phase, 0.0) for kind in ("first", "no-op", "render"))
        lines.append(f"| {phase} | {first:.0%} | {noop:.0%} | {render:.0%} |")
    raw, ours = f.client_cpu
    eight = next((row for row in f.links if row[0] == WORKERS), None)
    lines += [
        "",
        "## Behind the gaps",
        "",
        *(
            [
                "**First runs.** A new secret takes two writes, its data and then its ownership record",
                f"(KV v2 keeps custom metadata apart from the data). At 5,000 secrets on {WORKERS} connections those",
                f"two writes alone take {eight[3]:.2f} s, against {eight[1]:.2f} s for the floor's read and write.",
                "",
            ]
            if eight
            else []
        ),
        f"**Runs against Vault.** This machine has {os.cpu_count()} cores, and OpenBao runs on them too. A",
        f"read costs the floor's client {raw:.0f} µs of CPU and the function's store {ours:.0f} µs (one",
        "thread, reads one after another, `time.thread_time`): the store adds its deadline watchdog,",
        "retries, JSON decoding and the entry it returns. The rest of a run's CPU (the phases above",
        "other than waiting) is spent on the same cores OpenBao answers from, so it adds to the wall",
        "time instead of hiding behind the requests: at 5,000 secrets the floor itself keeps both",
        "cores busy. What is left is per-secret work in Python: libyaml's event stream and the",
        "objects built from it (a kustomize generator call sends the contract twice, as the item",
        "and as the functionConfig), the rules, the plan and the emitted YAML.",
        "",
        f"**Memory.** What a render of {10_000:,} secrets holds before it prints, in bytes per",
        "secret, by the step that allocated it (`tracemalloc`):",
        "",
        "| step | bytes per secret |",
        "|---|---:|",
        *[f"| {step} | {size:,.0f} |" for step, size in f.memory],
        f"| all | {sum(size for _, size in f.memory):,.0f} |",
        "",
        "A render makes each ExternalSecret as it prints it. A build (kustomize, kpt, `add`) holds",
        "them all, since a kpt run places each one in a file before any is written; an",
        "ExternalSecret is some twenty Python dicts and lists (its five data entries alone are ten).",
        "",
        "**Cold start.** The function's own start is the import table above plus one",
        "request per secret; the rest of a small build is kubectl's own.",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind in ("first", "no-op", "add key"):
        pts = [(r["secrets"], r["wall_s"]) for r in rows if r["run"] == kind]
        ax.plot(*zip(*pts, strict=True), marker="o", label=f"function: {kind}")
        floor = [(r["secrets"], r["floor_s"]) for r in rows if r["run"] == kind]
        ax.plot(*zip(*floor, strict=True), linestyle="--", marker=".", label=f"floor: {kind}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("secrets in the contract (5 keys each)")
    ax.set_ylabel("wall time, s")
    ax.set_title("secret-contract build time against the floor")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-deploy", action="store_true", help="skip the deploy-time figures (a local control plane)")
    parser.add_argument("--large", action="store_true", help="also time first runs of 10,000 and 40,000 secrets")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each scale, each with its floor (median)")
    args = parser.parse_args(argv)
    # An installed package carries compiled bytecode; an editable checkout run with
    # PYTHONDONTWRITEBYTECODE would recompile every module on every start instead.
    compileall.compile_dir(str(ROOT / "krm-fn"), quiet=1)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        server = start_openbao(tmp / "openbao.log")
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "SECRET_CONTRACT_"))}
            env.pop("CI", None)
            env.update({"VAULT_ADDR": server.addr, "VAULT_TOKEN": server.token, "SECRET_CONTRACT_STATS": "true"})
            env["XDG_CACHE_HOME"] = str(tmp / "cache")
            print("cold start ...", flush=True)
            cold = cold_start(server, env, tmp)
            imports = import_profile(env)
            # What needs no Vault is measured first, while OpenBao holds next to nothing.
            print("render ...", flush=True)
            renders = render_scale(env, tmp)
            memory = render_memory()
            print("parsers ...", flush=True)
            parsed = parsers()
            print("scale ...", flush=True)
            floor = Floor(server)
            rows = scale(server, env, floor, args.pairs)
            print("connections ...", flush=True)
            links = connections(server, floor)
            large: list[tuple[int, float, float]] = []
            if args.large:
                print("first runs at scale ...", flush=True)
                large = large_first_runs(server, env)
            print("profile ...", flush=True)
            shares = profile(server, env, tmp)
            cpu = client_cpu(server)
        finally:
            server.stop()
    deploy = None
    if not args.no_deploy:
        print("deploy time (local control plane) ...", flush=True)
        deploy = deploy_timings()
    load = (load_start, os.getloadavg()[0])
    figures = Figures(cold, rows, renders, links, parsed, shares, imports, deploy, large, args.pairs, load, cpu, memory)
    checks = targets(figures)
    text = report(figures, checks)
    out = ROOT / "bench"
    (out / "results.md").write_text(text)
    plot(rows, out / "results.png")
    print()
    print(text)
    return 0 if all(ok is not False for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
