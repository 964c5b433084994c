"""mergeway.kube.parallel: answers in the batch's order, every call made, the earliest error raised."""

from __future__ import annotations

import threading

import pytest

from mergeway.kube.parallel import map_ordered


def test_answers_come_back_in_the_order_of_the_items() -> None:
    items = list(range(40))
    assert map_ordered(lambda n: n * n, items, workers=8) == [n * n for n in items]


def test_the_calls_really_run_side_by_side() -> None:
    # Every call waits for all four to have started: only four threads at once get past the barrier.
    barrier = threading.Barrier(4, timeout=10)
    assert map_ordered(lambda n: barrier.wait() >= 0 and n, range(4), workers=4) == [0, 1, 2, 3]


def test_no_more_threads_than_workers_run_at_once() -> None:
    # Each call holds its thread until three calls are running (or all that are left): so every
    # thread the helper starts is in a call at once, and a fourth would be counted.
    cond = threading.Condition()
    running, finished, most, total = [0], [0], [0], 30

    def call(n: int) -> int:
        with cond:
            running[0] += 1
            most[0] = max(most[0], running[0])
            cond.notify_all()
            cond.wait_for(lambda: running[0] >= 3 or running[0] + finished[0] == total, timeout=10)
            running[0] -= 1
            finished[0] += 1
            cond.notify_all()
        return n

    assert map_ordered(call, range(total), workers=3) == list(range(total))
    assert most[0] == 3


# A helper thread that dies of the error it should have handed back is a failure too.
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_every_call_is_made_and_the_earliest_failure_is_raised() -> None:
    made: list[int] = []
    lock = threading.Lock()

    def call(n: int) -> int:
        with lock:
            made.append(n)
        if n in (7, 3, 12):
            raise ValueError(f"item {n}")
        return n

    with pytest.raises(ValueError, match="item 3"):
        map_ordered(call, range(20), workers=4)
    assert sorted(made) == list(range(20))


def test_one_worker_or_one_item_runs_in_the_calling_thread() -> None:
    caller = threading.get_ident()
    assert map_ordered(lambda _: threading.get_ident(), range(5), workers=1) == [caller] * 5
    assert map_ordered(lambda _: threading.get_ident(), ["only"], workers=8) == [caller]
    assert map_ordered(lambda n: n, [], workers=8) == []
