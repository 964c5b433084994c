"""The first program of every renderer process: confine it, then become the renderer.

:mod:`mergeway.proc` starts ``python -I -S renderjail.py OPTIONS -- TOOL ARGS...`` for a renderer
(``helm template``, ``kubectl kustomize``) instead of the tool itself. In that fresh, single-threaded
process (so nothing here runs between ``fork`` and ``exec`` of the multi-threaded worker, where a
lock held by another thread could deadlock the child) this program:

1. sets resource limits the tool inherits: ``RLIMIT_DATA`` (the bytes of writable private memory it
   may map: a template that doubles a string fails in the tool, not the worker's pod),
   ``RLIMIT_CPU`` (soft: SIGXCPU, one second later SIGKILL), no core dumps;
2. with isolation on, sets ``no_new_privs`` and a Landlock ruleset: the tool may read only the
   ``--read`` paths (the repository being rendered), write only its own scratch directory, execute
   only itself, open no TCP connection, and signal or ptrace nothing outside its own sandbox. Every
   other path is refused by the kernel, whatever symlink leads there and whatever the user id:
   ``/proc/1/environ``, the worker's ``/proc/<pid>/environ`` and memory, the mounted secret
   files, the kubeconfig and the ServiceAccount token;
3. ``execve``\\ s the tool, which keeps the limits and the ruleset for its whole life (and so does
   anything it could start).

``RLIMIT_AS`` is not used: Go reserves address space it never touches, and a Go tool under an
address-space limit low enough to matter does not start. Failing to confine exits with
:data:`SETUP_FAILED` and one line on stderr, before the tool runs at all.

Standard library only, and no import of :mod:`mergeway`: it runs with ``-I -S`` (no site-packages,
no environment-controlled import paths) so it starts fast and loads nothing a repository controls.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

#: Exit status when the confinement could not be set up (the tool never ran).
SETUP_FAILED = 125
#: How the jail names itself at the start of its one line of stderr on failure.
PREFIX = "mergeway-renderjail: "

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem access rights (include/uapi/linux/landlock.h).
_EXECUTE = 1 << 0
_WRITE_FILE = 1 << 1
_READ_FILE = 1 << 2
_READ_DIR = 1 << 3
_TRUNCATE = 1 << 14
#: Rights that apply to a regular file (a rule on a file may grant only these).
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | (1 << 15)
#: Every filesystem right each ABI version knows: 1 has bits 0-12, 2 adds REFER, 3 TRUNCATE,
#: 5 IOCTL_DEV. A ruleset "handles" all of them, so whatever is not granted is refused.
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_FS_RIGHTS_LATEST = (1 << 16) - 1
#: ABI 4: TCP bind and connect (no rule grants either, so both are refused).
_NET_TCP = (1 << 0) | (1 << 1)
#: ABI 6: abstract UNIX sockets and signals are scoped to the sandbox.
_SCOPES = (1 << 0) | (1 << 1)


class JailError(Exception):
    """The confinement could not be set up; the message says which step failed."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _fail(step: str) -> JailError:
    errno = ctypes.get_errno()
    return JailError(f"{step}: {os.strerror(errno)}")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing, disabled or blocked (seccomp).

    Only Linux has it; elsewhere the system call numbers mean something else, so they are not tried.
    """
    if not sys.platform.startswith("linux") or os.uname().machine not in ("x86_64", "aarch64"):
        return 0
    version = _libc().syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(version), 0)


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def landlock(readable: list[str], writable: list[str], executable: str) -> int:
    """Restrict this process (and what it executes) to the given paths; return the ABI used."""
    libc = _libc()
    abi = landlock_abi()
    if abi < 1:
        raise JailError("Landlock is not available in this kernel or container (needs Linux 5.13+, enabled)")
    fs_rights = _FS_RIGHTS_BY_ABI.get(abi, _FS_RIGHTS_LATEST)
    attr = _RulesetAttr(fs_rights, _NET_TCP if abi >= 4 else 0, _SCOPES if abi >= 6 else 0)
    # The struct grew with the ABI: pass only the fields this kernel knows.
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise _fail("landlock_create_ruleset")
    try:
        read = _READ_FILE | _READ_DIR
        grants = [(p, read) for p in readable] + [(p, fs_rights) for p in writable]
        grants += [(executable, _EXECUTE | _READ_FILE), ("/dev/null", _READ_FILE | _WRITE_FILE | _TRUNCATE)]
        for path, rights in grants:
            _allow(libc, ruleset, path, rights & fs_rights)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise _fail("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            raise _fail("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        rule = _PathBeneathAttr(rights, fd)
        if libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise _fail(f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def limit(memory_bytes: int, cpu_seconds: int) -> None:
    """Resource limits for this process and what it executes (0: that limit is not set)."""
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    if cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def parse(args: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """``--memory N --cpu N [--isolate] [--read PATH]... [--write PATH]... -- TOOL [ARGS...]``.

    Plain arguments rather than JSON: importing :mod:`json` costs more than the rest of this program.
    """
    options: dict[str, list[str]] = {"--memory": [], "--cpu": [], "--isolate": [], "--read": [], "--write": []}
    rest = list(args)
    while rest and rest[0] != "--":
        name = rest.pop(0)
        if name not in options:
            raise ValueError(f"unknown option {name!r}")
        options[name].append("1" if name == "--isolate" else rest.pop(0))
    if not rest[1:]:
        raise ValueError("usage: renderjail.py OPTIONS -- TOOL [ARGS...]")
    return options, rest[1:]


def main(args: list[str]) -> int:
    """Confine this process as ``args`` say, then ``exec`` the tool; :data:`SETUP_FAILED` if not."""
    try:
        options, argv = parse(args)
        limit(int((options["--memory"] or ["0"])[-1]), int((options["--cpu"] or ["0"])[-1]))
        if options["--isolate"]:
            landlock(options["--read"], options["--write"], argv[0])
        os.execv(argv[0], argv)  # noqa: S606 - an argument list, never a shell
    except (JailError, OSError, ValueError, IndexError) as exc:
        print(f"{PREFIX}{exc}", file=sys.stderr)
    return SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
