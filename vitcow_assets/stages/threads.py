"""Bounded background threads that keep the accelerator's thread free of CPU work.

``Prefetcher`` runs an iterator (decode + convert the next clips) on a thread, at most
``depth`` items ahead of the consumer (made or being made). ``BackgroundWorker`` runs a function on every item
handed to it (encode + write results) on a thread, with at most ``depth`` items waiting.

Both are context managers and own their thread: leaving the block always stops and joins
it, whatever happened. An exception raised on the thread is re-raised in the caller at the
next hand-over (``next`` / ``submit``) or at ``close``; an exception in the caller stops the
thread without running its remaining items. Memory is bounded by the depth: the thread
waits while it is that far ahead, and checks every ``poll_s`` whether it was stopped.

May use: threading, queue. Must not know what the items are.
"""

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetcher(Generic[T]):
    """Iterate ``make()``'s items, produced on a background thread ``depth`` items ahead.

    ``make`` is called on the thread, so the iterator (e.g. a decoder holding a file) is
    created, used and closed there. The thread starts an item only when fewer than
    ``depth`` items are waiting or being made, so at most ``depth`` items exist beside the
    one the caller holds (a clip being decoded counts: it holds frames too).
    """

    def __init__(self, make: Callable[[], Iterable[T]], depth: int = 1, name: str = "prefetch", poll_s: float = 0.1) -> None:
        if depth < 1:
            raise ValueError(f"prefetch depth must be at least 1, got {depth}")
        self._make = make
        self._queue: queue.Queue = queue.Queue(maxsize=depth + 1)  # + the end or an error
        self._slots = threading.Semaphore(depth)  # items the thread may make before the caller takes one
        self._stop = threading.Event()
        self._poll_s = poll_s
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.max_waiting = 0  # most items seen waiting in the queue (for tests and profiles)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=self._poll_s)
                return True
            except queue.Full:
                continue
        return False

    def _slot(self) -> bool:
        """Wait until the thread may make one more item; False once stopped."""
        while not self._stop.is_set():
            if self._slots.acquire(timeout=self._poll_s):
                return True
        return False

    def _run(self) -> None:
        source = None
        try:
            source = iter(self._make())
            while self._slot():
                item = next(source, _DONE)
                if not self._put(item) or item is _DONE:
                    return
                self.max_waiting = max(self.max_waiting, self._queue.qsize())
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(_Failure(exc))
        finally:
            close = getattr(source, "close", None)
            if callable(close):
                close()  # a generator's finally blocks (files) run on the thread that ran it

    def __enter__(self) -> "Prefetcher[T]":
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=self._poll_s)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._finished = True
                    raise RuntimeError("prefetch thread ended without a result") from None
        if item is _DONE:
            self._finished = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._finished = True
            raise item.exc
        self._slots.release()  # the caller holds it now: the thread may make the next
        return item

    def close(self) -> None:
        """Stop the thread (dropping what it made) and wait for it."""
        _stop_and_drain(self._stop, self._queue, self._thread, self._poll_s)

    def __exit__(self, *exc) -> None:
        self.close()


class BackgroundWorker(Generic[T]):
    """Call ``work(item)`` for every submitted item, in order, on one background thread."""

    def __init__(self, work: Callable[[T], None], depth: int = 2, name: str = "writer", poll_s: float = 0.1) -> None:
        if depth < 1:
            raise ValueError(f"worker queue depth must be at least 1, got {depth}")
        self._work = work
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._poll_s = poll_s
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.max_waiting = 0

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._poll_s)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is _DONE or self._stop.is_set():
                return
            try:
                self._work(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the submitter
                self._error = exc
                return

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._stop.set()
            raise error

    def __enter__(self) -> "BackgroundWorker[T]":
        self._thread.start()
        return self

    def submit(self, item: T) -> None:
        """Queue ``item``; blocks while ``depth`` items wait; raises the thread's error, if any."""
        while True:
            self._raise_if_failed()
            if not self._thread.is_alive():
                raise RuntimeError("background worker is not running")
            try:
                self._queue.put(item, timeout=self._poll_s)
                break
            except queue.Full:
                continue
        self.max_waiting = max(self.max_waiting, self._queue.qsize())

    def close(self) -> None:
        """Finish every queued item, stop the thread, raise its error if it had one."""
        while self._thread.is_alive():
            try:
                self._queue.put(_DONE, timeout=self._poll_s)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise_if_failed()

    def abort(self) -> None:
        """Stop without doing the queued items; wait for the item in hand."""
        _stop_and_drain(self._stop, self._queue, self._thread, self._poll_s)
        self._error = None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class InlineIterator(Generic[T]):
    """``Prefetcher``'s interface without a thread: items are made when asked for."""

    def __init__(self, make: Callable[[], Iterable[T]]) -> None:
        self._make = make
        self._source: Iterator[T] | None = None
        self.max_waiting = 0

    def __enter__(self) -> "InlineIterator[T]":
        self._source = iter(self._make())
        return self

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._source)

    def __exit__(self, *exc) -> None:
        close = getattr(self._source, "close", None)
        if callable(close):
            close()


class InlineWorker(Generic[T]):
    """``BackgroundWorker``'s interface without a thread: ``submit`` does the work at once."""

    def __init__(self, work: Callable[[T], None]) -> None:
        self._work = work
        self.max_waiting = 0

    def __enter__(self) -> "InlineWorker[T]":
        return self

    def submit(self, item: T) -> None:
        self._work(item)

    def __exit__(self, *exc) -> None:
        pass


def _stop_and_drain(stop: threading.Event, items: queue.Queue, thread: threading.Thread, poll_s: float) -> None:
    """Tell ``thread`` to stop, emptying ``items`` meanwhile so that it never blocks on a
    full queue, until it has ended."""
    stop.set()
    while thread.is_alive():
        try:
            while True:
                items.get_nowait()
        except queue.Empty:
            pass
        thread.join(poll_s)
