"""`make bench`: what a build costs, how it grows with the number of secrets, and how close
it comes to the floor (the same Vault requests from the plainest client).

Starts its own OpenBao dev server. Prints a table and writes bench/results.md and
bench/results.png. Every figure comes from this run on this machine.
"""

from __future__ import annotations

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
REPEATS = 7
WORKERS = 8  # the function's default (sync.DEFAULT_WORKERS)
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

    def run(self, mount: str, n: int, write: bool) -> float:
        """The floor of a run over n secrets: one read per secret, and for a run that writes,
        one data write per secret. Nothing else: no ownership record, no process, no YAML."""
        paths = [f"floor/ns-{i % 10}/secret-{i}" for i in range(n)]
        payload = {"username": "app", "host": "db.internal", "password": "x" * 32, "token": "y" * 32, "k": "z" * 64}
        start = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda p: self._call("GET", f"/v1/{mount}/data/{p}"), paths))
            if write:
                list(pool.map(lambda p: self._call("POST", f"/v1/{mount}/data/{p}", {"data": payload}), paths))
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


def median_run(cmd: list[str], stdin: str, env: dict[str, str], repeats: int = REPEATS) -> Run:
    runs = [timed(cmd, stdin, env) for _ in range(repeats)]
    return Run(statistics.median(r.wall for r in runs), statistics.median(r.peak_mb for r in runs), runs[0].requests)


def cold_start(server: OpenBao, env: dict[str, str], tmp: Path) -> list[tuple[str, float, float]]:
    """What every user pays on every build: the function's start for a small contract, and a
    whole kubectl kustomize build of the sample app against the same build with its output
    checked in."""
    sample = yaml_codec.load((ROOT / "kustomize-examples/sample-app/hostk8s.secrets.yaml").read_text())
    stdin = resource_list(sample)
    timed(FUNCTION, stdin, env)  # fill Vault (and the schema cache); the measured runs are no-op builds
    uncached = {**env, "SECRET_CONTRACT_SCHEMA_CACHE": "false"}
    rows = [
        ("python -c pass", median_run([PYTHON, "-c", "pass"], "", env)),
        ("import yaml, jsonschema, hvac", median_run([PYTHON, "-c", "import yaml, jsonschema, hvac"], "", env)),
        ("function, sample-app, Vault holding it", median_run(FUNCTION, stdin, env)),
        ("function, the same, schema not cached", median_run(FUNCTION, stdin, uncached)),
    ]
    plugin_home = tmp / "plugins"
    subprocess.run([*FUNCTION, "install-plugin", "--dir", str(plugin_home)], check=True, capture_output=True)
    kenv = {**env, "KUSTOMIZE_PLUGIN_HOME": str(plugin_home)}
    app = ROOT / "kustomize-examples/sample-app"
    build = ["kubectl", "kustomize", "--enable-alpha-plugins", str(app)]
    rows.append(("kubectl kustomize sample-app (legacy plugin)", median_run(build, "", kenv, 9)))
    checked_in = tmp / "checked-in"
    checked_in.mkdir()
    output = subprocess.run(build, env=kenv, capture_output=True, text=True, check=True).stdout
    (checked_in / "rendered.yaml").write_text(output)
    (checked_in / "kustomization.yaml").write_text("resources:\n  - rendered.yaml\n")
    plain = ["kubectl", "kustomize", str(checked_in)]
    rows.append(("kubectl kustomize, the same output checked in", median_run(plain, "", env, 9)))
    return [(name, r.wall * 1000, r.peak_mb) for name, r in rows]


def scale(server: OpenBao, env: dict[str, str], floor: Floor) -> list[dict[str, Any]]:
    rows = []
    for n in SCALES:
        mount, floor_mount = f"bench-{n}", f"floor-{n}"
        enable_mount(server, mount)
        enable_mount(server, floor_mount)
        run_env = {**env, "SECRET_CONTRACT_VAULT_MOUNT": mount}
        before = 0
        for kind, obj in (("first", contract(n)), ("no-op", contract(n)), ("add key", contract(n, extra_key=True))):
            run = timed(FUNCTION, resource_list(obj), run_env)
            after = floor.versions(mount, "")
            run.versions, before = after - before, after
            counts = run.requests
            floor_time = floor.run(floor_mount, n, write=kind != "no-op")
            rows.append(
                {
                    "secrets": n,
                    "run": kind,
                    "wall_s": run.wall,
                    "requests": sum(counts.values()),
                    "by_method": counts,
                    "versions": run.versions,
                    "peak_mb": run.peak_mb,
                    "floor_s": floor_time,
                    "ratio": run.wall / floor_time if floor_time else float("nan"),
                }
            )
            ratio = rows[-1]["ratio"]
            print(f"  {n:>5} {kind:<8} {run.wall:7.2f}s  floor {floor_time:6.2f}s  ratio {ratio:.2f}", flush=True)
    return rows


# Where a run's time goes, by the file a function lives in (first match wins).
PHASES = (
    ("waiting for Vault (worker threads)", ("threading.py", "concurrent/futures", "queue.py")),
    ("Vault transport", ("vault_http.py", "vault.py", "http/client.py", "socket.py", "ssl.py", "json/")),
    ("YAML in and out", ("yaml/", "yaml_codec.py", "krm.py")),
    ("contract validation", ("jsonschema", "referencing", "contract.py", "rules.py", "validation_cache.py")),
    ("plan and settings", ("plan.py", "declarations.py", "layout.py", "ownership.py", "settings.py", "sync.py")),
    ("generating values", ("generators.py", "secrets.py", "random.py", "base64.py")),
    ("ExternalSecrets", ("externalsecret.py", "pipeline.py")),
    ("start and imports", ("<frozen", "importlib", "site.py")),
)


def profile(server: OpenBao, env: dict[str, str], tmp: Path, n: int = 5000) -> dict[str, dict[str, float]]:
    """Share of the main thread's time per phase, for a first run and a no-op run (cProfile
    sees the main thread only: time the workers spend on Vault requests shows as waiting)."""
    import pstats

    mount = f"profile-{n}"
    enable_mount(server, mount)
    text = resource_list(contract(n))
    shares: dict[str, dict[str, float]] = {}
    for kind in ("first", "no-op"):
        out = tmp / f"profile-{kind}.out"
        subprocess.run(
            [PYTHON, "-m", "cProfile", "-o", str(out), "-m", "secret_contract"],
            input=text,
            env={**env, "SECRET_CONTRACT_VAULT_MOUNT": mount},
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


def targets(rows: list[dict[str, Any]], cold: list[tuple[str, float, float]]) -> list[tuple[str, bool, str]]:
    by = {(r["secrets"], r["run"]): r for r in rows}
    ms = {name: value for name, value, _ in cold}
    checks = []
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
    checks.append(("function's own cold start, imports included, under 80 ms", own < 80, f"{own:.0f} ms"))
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
    no_writes = all(
        r["versions"] == 0 and r["by_method"].get("POST", 0) + r["by_method"].get("PATCH", 0) == 0 for r in noop
    )
    checks.append(("no-op runs create no version and send no write", no_writes, "0 writes" if no_writes else "writes!"))
    for kind in ("first", "no-op", "add key"):
        growth = by[(5000, kind)]["wall_s"] / by[(1000, kind)]["wall_s"]
        checks.append((f"{kind}: 5,000 within 6x of 1,000 (linear)", growth <= 6, f"{growth:.2f}x"))
    peak = max(r["peak_mb"] for r in rows if r["secrets"] == 5000)
    checks.append(("peak memory at 5,000 secrets at most 150 MB", peak <= 150, f"{peak:.0f} MB"))
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
    timings = ROOT / ".cluster" / "timings.json"
    timings.unlink(missing_ok=True)
    done = subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *DEPLOY_TESTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not timings.exists():
        print(done.stdout[-3000:], file=sys.stderr)
        return {}
    found: dict[str, float] = json.loads(timings.read_text())
    return found


def report(
    cold: list[tuple[str, float, float]],
    rows: list[dict[str, Any]],
    checks: list[tuple[str, bool, str]],
    shares: dict[str, dict[str, float]],
    deploy: dict[str, float],
) -> str:
    lines = [
        "# secret-contract benchmarks",
        "",
        f"Measured by `make bench` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, OpenBao dev server on loopback, {WORKERS} worker threads.",
        "",
        "## Cold start (median of runs)",
        "",
        "| what | wall ms | peak MB |",
        "|---|---:|---:|",
        *[f"| {name} | {ms:.0f} | {mb:.0f} |" for name, ms, mb in cold],
        "",
        "## Scale (5 keys per secret: 2 static, 3 generated; 10 namespaces)",
        "",
        "The floor is the plainest client doing the least a run must: one read per secret, and for a",
        "run that writes, one data write per secret (GET then POST), from http.client keep-alive",
        "connections on the same number of threads, with no process start, validation or YAML. The",
        "first run's floor and the no-op run's floor are the two rows' `floor s`.",
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
        "## At deploy time (the local control plane: kube-apiserver, Flux, ESO; docs/cluster.md)",
        "",
        "| what | s |",
        "|---|---:|",
        *[f"| {text} | {deploy[key]:.1f} |" for key, text in DEPLOY_TIMINGS.items() if key in deploy],
    ]
    if not deploy:
        lines.append("| not measured: the cluster tests failed (their output is above) | |")
    lines += ["", "## Targets", "", "| target | met | measured |", "|---|---|---|"]
    lines += [f"| {name} | {'yes' if ok else 'NO'} | {value} |" for name, ok, value in checks]
    lines += [
        "",
        "## Where the time goes (5,000 secrets, cProfile of the main thread)",
        "",
        "Shares of the main thread's profiled time. The Vault requests run on worker threads, so",
        "their time shows here as waiting; the floor spends its whole time on those requests. What",
        "a run spends beyond waiting is its gap to the floor.",
        "",
        "| phase | first run | no-op run |",
        "|---|---:|---:|",
    ]
    phases = [name for name, _ in PHASES] + ["other"]
    for phase in phases:
        first, noop = shares["first"].get(phase, 0.0), shares["no-op"].get(phase, 0.0)
        lines.append(f"| {phase} | {first:.0%} | {noop:.0%} |")
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


def main() -> int:
    # An installed package carries compiled bytecode; an editable checkout run with
    # PYTHONDONTWRITEBYTECODE would recompile every module on every start instead.
    compileall.compile_dir(str(ROOT / "krm-fn"), quiet=1)
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
            print("scale ...", flush=True)
            rows = scale(server, env, Floor(server))
            print("profile ...", flush=True)
            shares = profile(server, env, tmp)
        finally:
            server.stop()
    print("deploy time (local control plane) ...", flush=True)
    deploy = deploy_timings()
    checks = targets(rows, cold)
    text = report(cold, rows, checks, shares, deploy)
    out = ROOT / "bench"
    (out / "results.md").write_text(text)
    plot(rows, out / "results.png")
    print()
    print(text)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
