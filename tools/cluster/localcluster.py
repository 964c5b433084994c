"""A real, local Kubernetes control plane for tests, benchmarks and the demo: ``up``, ``down``, ``status``.

Mergeway's engine speaks to the API server (server-side apply, dry runs, watches, CRDs, Deployment
rollouts), so its tests need a real one, not a mock. This launcher runs the real binaries built by
``build.sh`` (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) plus the KWOK controller,
which plays kubelet for a few simulated nodes, so Deployments roll out without containers. Everything
listens on 127.0.0.1 only, with generated certificates and RBAC on.

Process model (why no orphans are left behind):

* ``up`` starts one *supervisor* process (this file, ``_supervise``) in a session of its own, so a
  Ctrl-C in the terminal that ran ``make cluster`` does not reach it. The supervisor starts every
  component as its child with ``PR_SET_PDEATHSIG=SIGKILL``: if the supervisor dies, however it dies,
  the kernel kills the components.
* ``down`` sends SIGTERM to the supervisor, which stops the components (newest first) and exits; as a
  last resort ``down`` kills the whole process group and any recorded pid that is still ours.
* A cluster started with an owner process (``up --owner-pid``, what the pytest fixture does) is *owned*:
  the supervisor watches its owners through pidfds and tears everything down, state included, once
  the last owner has exited, even when it was killed with SIGKILL and never ran its cleanup. Another
  test session that reuses an owned cluster joins as one more owner. A cluster started without an
  owner (``make cluster``) is *persistent* and runs until ``down``.

State (certificates, kubeconfigs, etcd data, logs) lives in ``$MERGEWAY_CLUSTER_DIR`` or
``~/.cache/mergeway/cluster-state``; ``down`` removes it. Binaries live in the version-keyed cache of
``build.sh``, which builds them first when they are missing.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import fcntl
import ipaddress
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
STAGES_FILE = HERE / "kwok-stages.yaml"

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_COUNT = 2
NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
CONTEXT = "mergeway-local"
DEFAULT_UP_TIMEOUT = 180.0
BUILD_TIMEOUT = 3 * 3600.0

PR_SET_PDEATHSIG = 1

# Supervisors started by this process, so ``down`` can reap them instead of leaving zombies behind.
_started: dict[Path, subprocess.Popen[bytes]] = {}


class ClusterError(RuntimeError):
    """The cluster could not be started, or a command was used on a cluster in the wrong state."""


# --- locations ------------------------------------------------------------------------------------


def cache_root() -> Path:
    """Where build.sh keeps binaries; the same rule as build.sh so both agree on one cache."""
    explicit = os.environ.get("MERGEWAY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "mergeway"


def state_dir() -> Path:
    """The running cluster's state, outside the checkout so every clone on the machine shares one cluster."""
    explicit = os.environ.get("MERGEWAY_CLUSTER_DIR")
    return Path(explicit) if explicit else cache_root() / "cluster-state"


def kubeconfig_path(state: Path | None = None) -> Path:
    """The admin kubeconfig of the local cluster (exists only while it is up)."""
    return (state or state_dir()) / "kubeconfig"


@dataclass(frozen=True)
class Layout:
    """Every path and port of one cluster, derived from its state directory and ``cluster.json``."""

    state: Path
    bin: Path
    ports: dict[str, int]

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def kubeconfig(self) -> Path:
        return kubeconfig_path(self.state)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def kubeconfig_for(self, name: str) -> Path:
        return self.state / "kubeconfigs" / f"{name}.yaml"

    @classmethod
    def load(cls, state: Path) -> Layout:
        data = json.loads((state / "cluster.json").read_text(encoding="utf-8"))
        return cls(state=state, bin=Path(data["bin"]), ports={k: int(v) for k, v in data["ports"].items()})

    def save(self) -> None:
        payload = {"bin": str(self.bin), "ports": self.ports}
        (self.state / "cluster.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")


# --- small helpers ----------------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress goes to stderr so stdout's last line stays the KUBECONFIG=... that callers parse."""
    print(f"[localcluster] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes; it only waits for its parent to reap it.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def poll_until(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    abort: Callable[[], str | None] | None = None,
) -> None:
    """Wait on a condition with a deadline; ``abort`` names a reason to give up early (a dead process)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            if condition():
                return
        except Exception as exc:
            last = exc
        if abort is not None:
            reason = abort()
            if reason:
                raise ClusterError(f"{what}: {reason}")
        if time.monotonic() >= deadline:
            detail = f" (last error: {last})" if last else ""
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """Serialise up/down across processes (two test sessions starting at once must not race)."""
    state = state_dir()
    state.parent.mkdir(parents=True, exist_ok=True)
    with open(state.parent / f".{state.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- certificates and kubeconfigs ------------------------------------------------------------------------


def generate_pki(layout: Layout) -> None:
    """A throwaway CA and the certificates every component needs, valid for loopback names only.

    ECDSA P-256 keys: generating them takes milliseconds, which matters for a fast cold ``up``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki = layout.pki
    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    until = now + datetime.timedelta(days=365)

    def new_key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def write_key(name: str, key: ec.EllipticCurvePrivateKey) -> None:
        path = pki / f"{name}.key"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
        path.chmod(0o600)

    def write_cert(name: str, cert: x509.Certificate) -> None:
        (pki / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def make_ca(name: str, cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
        key = new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        write_key(name, key)
        write_cert(name, cert)
        return key, subject

    def issue(
        ca: tuple[ec.EllipticCurvePrivateKey, x509.Name],
        name: str,
        cn: str,
        *,
        orgs: tuple[str, ...] = (),
        server: bool = False,
    ) -> None:
        key = new_key()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(ca[1])
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            service_ip = ipaddress.IPv4Network(SERVICE_CIDR)[1]  # the ClusterIP of Service/kubernetes
            names: list[x509.GeneralName] = [
                x509.DNSName(n)
                for n in (
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                )
            ]
            names += [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.IPAddress(service_ip)]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        write_key(name, key)
        write_cert(name, builder.sign(ca[0], hashes.SHA256()))

    ca = make_ca("ca", "mergeway-local-ca")
    issue(ca, "apiserver", "kube-apiserver", server=True)
    issue(ca, "kwok-serving", "kwok-controller", server=True)
    issue(ca, "admin", "mergeway-admin", orgs=("system:masters",))
    issue(ca, "controller-manager", "system:kube-controller-manager")
    issue(ca, "scheduler", "system:kube-scheduler")
    # KWOK plays kubelet for every simulated node at once, so no single node identity fits it.
    issue(ca, "kwok", "kwok-controller", orgs=("system:masters",))
    # The request-header (front proxy) CA: without it every component logs a missing CA bundle in a
    # loop, and aggregated API servers could not authenticate the API server.
    front_proxy = make_ca("front-proxy-ca", "mergeway-local-front-proxy-ca")
    issue(front_proxy, "front-proxy-client", "front-proxy-client")

    sa_key = new_key()
    write_key("service-account", sa_key)
    (pki / "service-account.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def write_kubeconfig(layout: Layout, path: Path, cert_name: str, user: str) -> None:
    """A self-contained kubeconfig (certificates inline) so it can be copied or mounted anywhere."""
    import base64

    import yaml

    def data(name: str) -> str:
        return base64.b64encode((layout.pki / name).read_bytes()).decode("ascii")

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CONTEXT, "cluster": {"server": layout.server, "certificate-authority-data": data("ca.crt")}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": data(f"{cert_name}.crt"),
                    "client-key-data": data(f"{cert_name}.key"),
                },
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)


# --- talking to the cluster without the kubernetes client (fast to import, small supervisor) ----------


def admin_context(layout: Layout) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
    context.load_cert_chain(str(layout.pki / "admin.crt"), str(layout.pki / "admin.key"))
    return context


def insecure_context() -> ssl.SSLContext:
    """For the health ports of the controller manager and scheduler, which serve self-signed certs."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def http_get(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def api(
    layout: Layout, method: str, path: str, body: dict[str, Any] | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        layout.server + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, context=context or admin_context(layout), timeout=5) as resp:
            return int(resp.status), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"{}")


def apiserver_ready(layout: Layout) -> bool:
    try:
        status, _ = http_get(layout.server + "/readyz", admin_context(layout))
    except (OSError, ssl.SSLError):
        return False
    return status == 200


# --- component command lines --------------------------------------------------------------------------


def component_args(layout: Layout, name: str) -> list[str]:
    """The command line of each component; flags chosen for a small, fast, loopback-only cluster."""
    p, pki, b = layout.ports, layout.pki, layout.bin
    if name == "etcd":
        return [
            str(b / "etcd"),
            "--name=mergeway",
            f"--data-dir={layout.state / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{p['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{p['etcd']}",
            f"--listen-peer-urls=http://127.0.0.1:{p['etcd_peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p['etcd_peer']}",
            f"--initial-cluster=mergeway=http://127.0.0.1:{p['etcd_peer']}",
            # A throwaway test store: no fsync makes every write (and so every apply) faster.
            "--unsafe-no-fsync",
            "--quota-backend-bytes=2147483648",
            "--auto-compaction-mode=periodic",
            "--auto-compaction-retention=5m",
            "--log-level=warn",
        ]
    if name == "kube-apiserver":
        return [
            str(b / "kube-apiserver"),
            "--advertise-address=127.0.0.1",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['apiserver']}",
            f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
            f"--cert-dir={pki / 'apiserver-generated'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-key-file={pki / 'service-account.pub'}",
            f"--service-account-signing-key-file={pki / 'service-account.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--profiling=false",
            "--event-ttl=30m",
            # The endpoints of Service/kubernetes would be 127.0.0.1, which validation rejects.
            "--endpoint-reconciler-type=none",
            "--v=0",
        ]
    if name in ("kube-controller-manager", "kube-scheduler"):
        short = "controller-manager" if name == "kube-controller-manager" else "scheduler"
        kubeconfig = layout.kubeconfig_for(short)
        args = [
            str(b / name),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={p[short]}",
            f"--cert-dir={pki / (short + '-generated')}",
            "--leader-elect=false",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            "--profiling=false",
            "--v=0",
        ]
        if name == "kube-controller-manager":
            args += [
                f"--service-account-private-key-file={pki / 'service-account.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=true",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
            ]
        return args
    if name == "kwok":
        return [
            str(b / "kwok"),
            f"--kubeconfig={layout.kubeconfig_for('kwok')}",
            f"--config={layout.state / 'kwok.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION[0]}={NODE_ANNOTATION[1]}",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            f"--node-port={p['kwok']}",
            f"--server-address=127.0.0.1:{p['kwok']}",
            f"--tls-cert-file={pki / 'kwok-serving.crt'}",
            f"--tls-private-key-file={pki / 'kwok-serving.key'}",
            "--node-lease-duration-seconds=40",
        ]
    raise ValueError(name)


def component_health(layout: Layout, name: str) -> bool:
    """Each component's own health endpoint, so ``up`` reports which one failed to come up."""
    p = layout.ports
    try:
        if name == "etcd":
            status, body = http_get(f"http://127.0.0.1:{p['etcd']}/health")
            return status == 200 and json.loads(body).get("health") == "true"
        if name == "kube-apiserver":
            return apiserver_ready(layout)
        port = {
            "kube-controller-manager": p["controller-manager"],
            "kube-scheduler": p["scheduler"],
            "kwok": p["kwok"],
        }[name]
        status, _ = http_get(f"https://127.0.0.1:{port}/healthz", insecure_context())
        return status == 200
    except (OSError, ssl.SSLError, ValueError):
        return False


# --- the supervisor -----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Runs in each component between fork and exec: the kernel SIGKILLs it when the supervisor dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the supervisor died before prctl took effect
        os._exit(1)


class Supervisor:
    """Starts the components in order, waits for each, then watches them and the owners until told to stop."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.owned = (layout.state / "owned").exists()
        self.owner_fds: dict[int, int] = {}
        self.lock_handle: Any = None

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        failed = ""
        try:
            self._start_all()
            (self.layout.state / "ready").write_text(str(time.time()), encoding="utf-8")
            log("cluster ready")
            failed = self._watch()
        except ClusterError as exc:
            failed = str(exc)
        except StopRequestedError:
            pass
        finally:
            self._stop_all()
        if failed:
            (self.layout.state / "failed").write_text(failed + "\n", encoding="utf-8")
            log(f"stopped: {failed}")
            return 1
        if self.lock_handle is not None or (self._abandoned() and self._try_lock()):
            # Every owner is gone and nobody is left to call ``down``: clean up as it would.
            shutil.rmtree(self.layout.state, ignore_errors=True)
            log("every owner process exited; cluster stopped and state removed")
        return 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _check_stop(self) -> None:
        if self.stopping or self._abandoned():
            raise StopRequestedError

    def _try_lock(self) -> bool:
        """Take the up/down lock without waiting: if an up/down holds it, that one decides, not us."""
        handle = open(self.layout.state.parent / f".{self.layout.state.name}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self.lock_handle = handle  # held until this process exits
        return True

    def _abandoned(self) -> bool:
        """An owned cluster whose owner processes (``owners/<pid>``) have all exited.

        Each owner is watched through a pidfd, which cannot be fooled by pid reuse; ``ensure_up`` adds
        owners and ``release`` removes them while holding the lock.
        """
        if not self.owned:
            return False
        owners_dir = self.layout.state / "owners"
        try:
            current = {int(p.name) for p in owners_dir.iterdir() if p.name.isdigit()}
        except OSError:
            current = set()
        for pid in list(self.owner_fds):
            if pid not in current:
                os.close(self.owner_fds.pop(pid))
        for pid in current - set(self.owner_fds):
            try:
                self.owner_fds[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                (owners_dir / str(pid)).unlink(missing_ok=True)
        for pid, fd in list(self.owner_fds.items()):
            if select.select([fd], [], [], 0)[0]:  # readable: the process has exited
                os.close(self.owner_fds.pop(pid))
                (owners_dir / str(pid)).unlink(missing_ok=True)
        return not self.owner_fds

    def _start(self, name: str) -> None:
        self._check_stop()
        log_file = open(self.layout.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        env = dict(os.environ)
        if name == "kwok":
            # KWOK also reads ~/.kwok/kwok.yaml when it exists; a private HOME keeps a user's file out.
            env["HOME"] = str(self.layout.state / "kwok-home")
            Path(env["HOME"]).mkdir(exist_ok=True)
        process = subprocess.Popen(
            component_args(self.layout, name),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=self.layout.state,
            env=env,
            preexec_fn=_die_with_parent,
        )
        log_file.close()
        self.children[name] = process
        (self.layout.state / "pids").mkdir(exist_ok=True)
        (self.layout.state / "pids" / name).write_text(str(process.pid), encoding="utf-8")

    def _wait_healthy(self, names: tuple[str, ...], timeout: float) -> None:
        def dead() -> str | None:
            self._check_stop()
            for name in names:
                code = self.children[name].poll()
                if code is not None:
                    return f"{name} exited with code {code}; see {self.layout.logs / (name + '.log')}"
            return None

        for name in names:

            def healthy(component: str = name) -> bool:
                return component_health(self.layout, component)

            poll_until(healthy, timeout, f"{name} to be healthy", abort=dead)

    def _start_all(self) -> None:
        started = time.monotonic()
        self._start("etcd")
        self._wait_healthy(("etcd",), 30)
        self._start("kube-apiserver")
        self._wait_healthy(("kube-apiserver",), 90)
        log(f"api server ready after {time.monotonic() - started:.1f}s")
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            self._start(name)
        self._create_nodes()
        self._wait_healthy(("kube-controller-manager", "kube-scheduler", "kwok"), 60)
        self._wait_cluster_usable()
        log(f"all components ready after {time.monotonic() - started:.1f}s")

    def _create_nodes(self) -> None:
        """Nodes KWOK manages: schedulable, no taints, large enough for any test workload."""
        for index in range(NODE_COUNT):
            name = f"kwok-node-{index}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {NODE_ANNOTATION[0]: NODE_ANNOTATION[1], "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
                },
            }
            status, body = api(self.layout, "POST", "/api/v1/nodes", node)
            if status not in (201, 409):
                raise ClusterError(f"creating node {name}: HTTP {status} {body.get('message', '')}")

    def _wait_cluster_usable(self) -> None:
        """Ready means a workload can run: nodes Ready and the default ServiceAccount exists."""

        def nodes_ready() -> bool:
            status, body = api(self.layout, "GET", "/api/v1/nodes")
            ready = [
                item
                for item in body.get("items", [])
                if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in item.get("status", {}).get("conditions", [])
                )
            ]
            return status == 200 and len(ready) >= NODE_COUNT

        def default_sa() -> bool:
            return api(self.layout, "GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

        def dead() -> str | None:
            self._check_stop()
            for name, process in self.children.items():
                if process.poll() is not None:
                    return f"{name} exited with code {process.returncode}"
            return None

        poll_until(nodes_ready, 60, f"{NODE_COUNT} simulated nodes to be Ready", abort=dead)
        poll_until(default_sa, 60, "the default ServiceAccount", abort=dead)

    def _watch(self) -> str:
        """Returns why the cluster stopped on its own ("" when asked to stop)."""
        while True:
            if self.stopping:
                return ""
            # Decide "abandoned" only under the lock, so an ``up`` that is joining as a new owner
            # right now cannot be left with a cluster that is stopping underneath it.
            if self._abandoned() and self._try_lock():
                if self._abandoned():
                    return ""
                self.lock_handle.close()
                self.lock_handle = None
            for name, process in self.children.items():
                if process.poll() is not None:
                    return f"{name} exited unexpectedly with code {process.returncode}"
            with contextlib.suppress(InterruptedError):
                select.select(list(self.owner_fds.values()), [], [], 0.5)

    def _stop_all(self) -> None:
        """SIGTERM newest first (clients before the API server before etcd), SIGKILL what lingers."""
        for name in reversed(list(self.children)):
            process = self.children[name]
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        self.children.clear()
        shutil.rmtree(self.layout.state / "pids", ignore_errors=True)


class StopRequestedError(Exception):
    """Raised inside start-up waits when a stop was requested, to unwind into the teardown."""


# --- the commands -------------------------------------------------------------------------------------


def binaries() -> Path:
    """The bin directory from build.sh, which builds first when the version-keyed cache is missing."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise ClusterError(f"build.sh failed with code {result.returncode}")
    bin_dir = Path(result.stdout.strip().splitlines()[-1])
    missing = [c for c in COMPONENTS if not (bin_dir / c).is_file()]
    if missing:
        raise ClusterError(f"build.sh did not produce {', '.join(missing)} in {bin_dir}")
    return bin_dir


def supervisor_pid(state: Path | None = None) -> int | None:
    pid = read_pid((state or state_dir()) / "supervisor.pid")
    return pid if pid is not None and pid_alive(pid) else None


def is_up(state: Path | None = None) -> bool:
    """Up means: our supervisor is alive, it finished starting, and the API server answers /readyz."""
    state = state or state_dir()
    if supervisor_pid(state) is None or not (state / "ready").exists():
        return False
    try:
        return apiserver_ready(Layout.load(state))
    except (OSError, ValueError, KeyError):
        return False


def ensure_up(owner_pid: int | None = None, timeout: float = DEFAULT_UP_TIMEOUT) -> tuple[Path, bool]:
    """Start the cluster unless it is already up; returns (kubeconfig, whether this call started it).

    Without ``owner_pid`` a new cluster is *persistent*: it runs until ``down``. With ``owner_pid`` it
    is *owned*: it stops by itself once every owner has exited or called :func:`release`. Joining an
    owned cluster adds ``owner_pid`` as one more owner (two test sessions can share one cluster); a
    persistent cluster is never stopped by its users. Whether a running cluster is owned never changes.
    """
    with state_lock():
        state = state_dir()
        if is_up(state):
            if (state / "owned").exists():
                if owner_pid is not None:
                    _add_owner(state, owner_pid)
                else:
                    log("this cluster was started by a test session and stops when the last one ends")
            return kubeconfig_path(state), False
        if state.exists():
            log("removing the state of a cluster that is no longer running")
            _down_locked(state)
        bin_dir = binaries()
        started = time.monotonic()
        state.mkdir(parents=True)
        ports = {
            name: free_port() for name in ("etcd", "etcd_peer", "apiserver", "controller-manager", "scheduler", "kwok")
        }
        layout = Layout(state=state, bin=bin_dir, ports=ports)
        layout.save()
        layout.logs.mkdir()
        generate_pki(layout)
        write_kubeconfig(layout, layout.kubeconfig, "admin", "mergeway-admin")
        write_kubeconfig(
            layout, layout.kubeconfig_for("controller-manager"), "controller-manager", "system:kube-controller-manager"
        )
        write_kubeconfig(layout, layout.kubeconfig_for("scheduler"), "scheduler", "system:kube-scheduler")
        write_kubeconfig(layout, layout.kubeconfig_for("kwok"), "kwok", "kwok-controller")
        shutil.copyfile(STAGES_FILE, state / "kwok.yaml")
        if owner_pid is not None:
            (state / "owned").touch()
            _add_owner(state, owner_pid)

        with open(layout.logs / "supervisor.log", "ab") as out:
            supervisor = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "_supervise", str(state)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=state,
            )
        (state / "supervisor.pid").write_text(str(supervisor.pid), encoding="utf-8")
        _started[state] = supervisor

        def supervisor_died() -> str | None:
            if supervisor.poll() is None:
                return None
            failed = state / "failed"
            reason = (
                failed.read_text(encoding="utf-8").strip()
                if failed.exists()
                else f"supervisor exited with code {supervisor.returncode}"
            )
            supervisor_log = layout.logs / "supervisor.log"
            return f"{reason}\n--- {supervisor_log} ---\n{_tail(supervisor_log)}"

        try:
            poll_until(lambda: (state / "ready").exists(), timeout, "the cluster to start", abort=supervisor_died)
        except ClusterError:
            _down_locked(state, keep_logs=True)
            raise
        log(f"cluster up in {time.monotonic() - started:.1f}s (state: {state})")
        return layout.kubeconfig, True


def _add_owner(state: Path, pid: int) -> None:
    (state / "owners").mkdir(exist_ok=True)
    (state / "owners" / str(pid)).touch()


def owners(state: Path | None = None) -> list[int]:
    """The live owner processes of an owned cluster (empty for a persistent one)."""
    owners_dir = (state or state_dir()) / "owners"
    if not owners_dir.is_dir():
        return []
    return sorted(int(p.name) for p in owners_dir.iterdir() if p.name.isdigit() and pid_alive(int(p.name)))


def release(owner_pid: int) -> bool:
    """Drop ``owner_pid`` as an owner; stop an owned cluster that has no owner left. Returns whether it stopped."""
    with state_lock():
        state = state_dir()
        (state / "owners" / str(owner_pid)).unlink(missing_ok=True)
        if not (state / "owned").exists() or owners(state):
            return False
        _down_locked(state)
        return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _our_process(pid: int, state: Path) -> bool:
    """Guards against pid reuse: only kill a process whose command line names our state or binaries."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return str(state) in cmdline


def _down_locked(state: Path, keep_logs: bool = False) -> None:
    pid = read_pid(state / "supervisor.pid")
    if pid is not None and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    own = _started.pop(state, None)
    if own is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            own.wait(timeout=5)
    # The components die with the supervisor (PDEATHSIG); this catches anything that did not.
    pids_dir = state / "pids"
    if pids_dir.is_dir():
        for pid_file in pids_dir.iterdir():
            child = read_pid(pid_file)
            if child is not None and pid_alive(child) and _our_process(child, state):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
    if keep_logs and (state / "logs").is_dir():
        keep = state.parent / f"{state.name}-failed-logs"
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(state / "logs", keep)
        log(f"logs of the failed start kept in {keep}")
    shutil.rmtree(state, ignore_errors=True)


def down() -> bool:
    """Stop every process of the cluster and remove its state; returns whether anything was running."""
    with state_lock():
        state = state_dir()
        was_running = supervisor_pid(state) is not None
        if state.exists():
            _down_locked(state)
        return was_running


def status() -> dict[str, Any]:
    state = state_dir()
    result: dict[str, Any] = {
        "state": str(state),
        "up": is_up(state),
        "supervisor": supervisor_pid(state),
        "owned": (state / "owned").exists(),
        "owners": owners(state),
        "components": {},
    }
    if (state / "cluster.json").exists():
        layout = Layout.load(state)
        for name in COMPONENTS:
            pid = read_pid(state / "pids" / name)
            result["components"][name] = {
                "pid": pid,
                "alive": pid is not None and pid_alive(pid),
                "healthy": component_health(layout, name),
            }
        result["kubeconfig"] = str(layout.kubeconfig)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    up_cmd = commands.add_parser(
        "up", help="start the cluster (a no-op when it is up); the last line is KUBECONFIG=..."
    )
    up_cmd.add_argument(
        "--owner-pid", type=int, help="a new cluster stops once this (and every later joining) owner has exited"
    )
    up_cmd.add_argument("--timeout", type=float, default=DEFAULT_UP_TIMEOUT)
    commands.add_parser("down", help="stop every process of the cluster and remove its state")
    commands.add_parser("status", help="print the state of each component as JSON; exit 1 when not up")
    commands.add_parser("env", help="print KUBECONFIG=... for a running cluster; exit 1 when not up")
    supervise = commands.add_parser("_supervise", help=argparse.SUPPRESS)
    supervise.add_argument("state", type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            path, _started = ensure_up(owner_pid=args.owner_pid, timeout=args.timeout)
            print(f"KUBECONFIG={path}", flush=True)
            return 0
        if args.command == "down":
            log("stopped the cluster and removed its state" if down() else "no cluster was running")
            return 0
        if args.command == "status":
            info = status()
            print(json.dumps(info, indent=2))
            return 0 if info["up"] else 1
        if args.command == "env":
            if not is_up():
                log("the cluster is not up: run `make cluster`")
                return 1
            print(f"KUBECONFIG={kubeconfig_path()}")
            return 0
        if args.command == "_supervise":
            return Supervisor(Layout.load(args.state)).run()
    except ClusterError as exc:
        log(f"error: {exc}")
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
