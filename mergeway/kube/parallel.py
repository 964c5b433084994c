"""One function over a batch of items on a few threads, answers in order: every burst of API requests.

Discovery, lists, dry runs, applies and health checks each send a batch of independent requests
and need the answers in the batch's order. ``concurrent.futures`` does that, but importing it
imports :mod:`logging` (with ``traceback``, ``string`` and more), about 8 ms of every ``mergeway``
run, which needs nothing else of logging. This is the part of it the engine uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


def map_ordered(fn: Callable[[_T], _R], items: Iterable[_T], *, workers: int, name: str = "worker") -> list[_R]:
    """``[fn(item) for item in items]``, computed on up to ``workers`` threads (the caller's among them).

    Every call runs even when one raises, so a batch of requests is never half sent for a reason
    the caller cannot see; then the exception of the earliest failed item is raised, as iterating
    ``ThreadPoolExecutor.map`` would. An interrupt of the calling thread is raised at once.
    """
    batch = list(items)
    results: list[Any] = [None] * len(batch)
    errors: dict[int, BaseException] = {}
    indexes = iter(range(len(batch)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                return
            try:
                results[index] = fn(batch[index])
            except BaseException as exc:
                errors[index] = exc
                if not isinstance(exc, Exception):
                    raise

    helpers = [
        threading.Thread(target=work, name=f"{name}-{n}", daemon=True) for n in range(min(workers, len(batch)) - 1)
    ]
    for thread in helpers:
        thread.start()
    work()
    for thread in helpers:
        thread.join()
    if errors:
        raise errors[min(errors)]
    return results
