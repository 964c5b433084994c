"""Run a program where Landlock is blocked, as on a node whose container runtime's seccomp profile
does not allow its system calls: ``python no_landlock.py PROGRAM [ARGS...]`` (x86-64 Linux).

A seccomp filter makes ``landlock_create_ruleset``, ``landlock_add_rule`` and
``landlock_restrict_self`` fail with ENOSYS for this process and everything it executes; every
other system call is allowed. Used by the tests only (not collected).
"""

from __future__ import annotations

import ctypes
import os
import sys

_LANDLOCK_SYSCALLS = (444, 445, 446)
_SECCOMP_RET_ERRNO, _SECCOMP_RET_ALLOW, _ENOSYS = 0x00050000, 0x7FFF0000, 38
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_RET_K = 0x20, 0x15, 0x06
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


class _Filter(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32))


class _Program(ctypes.Structure):
    _fields_ = (("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Filter)))


def block_landlock() -> None:
    # Load the syscall number; for each Landlock call, jump to "refuse"; otherwise allow.
    count = len(_LANDLOCK_SYSCALLS)
    code = [_Filter(_BPF_LD_W_ABS, 0, 0, 0)]
    code += [_Filter(_BPF_JEQ_K, count - i, 0, nr) for i, nr in enumerate(_LANDLOCK_SYSCALLS)]
    code += [_Filter(_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW), _Filter(_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO | _ENOSYS)]
    filters = (_Filter * len(code))(*code)
    program = _Program(len(code), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


if __name__ == "__main__":
    block_landlock()
    os.execv(sys.argv[1], sys.argv[1:])
