"""Shared by the benchmarks: the local cluster, generated manifest sets, timing helpers."""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def launcher() -> ModuleType:
    """tools/cluster/localcluster.py, the local cluster's launcher."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tools.cluster import localcluster

    return localcluster


def precompile() -> None:
    """Write the package's bytecode, as installing it does (pip compiles at install time).

    A checkout run with ``PYTHONDONTWRITEBYTECODE`` (set in some shells and CI images) otherwise
    compiles every module from source at every start: ~30 ms of a CLI run that a ``pip install``
    does not pay, and that would be charged to it against a compiled kubectl.
    """
    compileall.compile_dir(ROOT / "mergeway", quiet=1)


def cluster_env() -> tuple[dict[str, str], bool]:
    """KUBECONFIG for the local cluster (started for this run when it is not up)."""
    precompile()
    kubeconfig, started = launcher().ensure_up(owner_pid=os.getpid())
    return {**os.environ, "KUBECONFIG": str(kubeconfig)}, started


def write_set(directory: Path, objects: int, *, generation: int = 1, changed_every: int = 1) -> None:
    """A realistic mix: per app a Deployment, a Service and a ConfigMap (and a Secret every 5th).

    With ``changed_every=N`` only every Nth app gets ``generation``; the others stay at 1 (a PR that
    touches some apps of a large environment).
    """
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    made, app = 0, 0
    base_generation = generation
    while made < objects:
        name = f"app-{app:04d}"
        generation = base_generation if app % changed_every == 0 else 1
        docs = [
            f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  replicas: {1 + generation % 2}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: example.com/{name}:v{generation}
        ports: [{{containerPort: 8080}}]
        env: [{{name: MODE, value: bench}}]
""",
            f"""apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
""",
            f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}-config}}
data: {{generation: "{generation}", level: info}}
""",
        ]
        if app % 5 == 0:
            docs.append(f"""apiVersion: v1
kind: Secret
metadata: {{name: {name}-secret}}
stringData: {{token: "t-{generation}-{name}"}}
""")
        docs = docs[: objects - made]
        (directory / f"{name}.yaml").write_text("---\n".join(docs))
        made += len(docs)
        app += 1


def write_small_set(directory: Path, objects: int) -> None:
    """Many small objects of cheap kinds (ConfigMaps, ServiceAccounts, Secrets): no rollout to wait for.

    This is what a new user's first repository, or an environment of configuration, looks like:
    the cost is all per request, so client start-up and per-request overhead decide the race.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    kinds = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: small-{i:05d}}}\ndata: {{key: value-{i}}}\n",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: small-{i:05d}}}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: small-{i:05d}}}\nstringData: {{token: t-{i}}}\n",
    )
    docs = [kinds[i % len(kinds)].format(i=i) for i in range(objects)]
    for start in range(0, objects, 50):
        (directory / f"small-{start:05d}.yaml").write_text("---\n".join(docs[start : start + 50]))


def _control_plane_cpu(only: tuple[str, ...] = ()) -> float:
    """CPU seconds used so far by the local cluster's processes (API server, controllers, etcd, KWOK).

    ``only`` names the processes to count (``("kube-apiserver", "etcd")``: what serves requests).
    """
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    pids = launcher().state_dir() / "pids"
    for pid_file in pids.iterdir() if pids.is_dir() else []:
        if only and pid_file.name not in only:
            continue
        try:
            fields = Path(f"/proc/{pid_file.read_text().strip()}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def settle(quiet: float = 0.3, timeout: float = 10.0) -> None:
    """Wait (untimed) until the control plane is nearly idle: below ``quiet`` cores over half a second.

    Deleting a namespace of Deployments leaves the controllers busy (ReplicaSets, pods) after the
    namespace is gone; whichever tool is timed next would pay for it.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = _control_plane_cpu()
        time.sleep(0.5)
        if _control_plane_cpu() - before < quiet * 0.5:
            return


def kubectl(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([str(BIN / "kubectl"), *args], env=env, capture_output=True, timeout=600)
    if check and proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr.decode()[-2000:])
    return proc


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def timed_pair(first: Callable[[], object], second: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall times of two commands, run alternately so background load hits both alike."""
    a, b = [], []
    for _ in range(repeat):
        for fn, out in ((first, a), (second, b)):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return statistics.median(a), statistics.median(b)


def serving_cpu() -> float:
    """CPU seconds used so far by the processes that serve API requests: the API server and etcd."""
    return _control_plane_cpu(("kube-apiserver", "etcd"))
