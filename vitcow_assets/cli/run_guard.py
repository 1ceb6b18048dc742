"""Keeps an in-process run (``vitcow run``) from waiting for ever on a pool.

While the run executes, a background thread

- frees the pool slots of runs whose processes are gone (``release_dead_runs``), so a step
  waiting for the ``gpu`` pool gets it as soon as a crashed holder is found dead, and
- makes SIGINT/SIGTERM end the run. Dagster's in-process executor records an interrupt that
  arrives outside a step (while a step waits for a pool slot, say) and never acts on it:
  the wait would go on. The thread sees the recorded interrupt and raises
  ``KeyboardInterrupt`` in the main thread, which ends the run (marked failed, its queued
  pool claim freed) and the command.
"""

import ctypes
import signal
import threading

import dagster as dg

from vitcow_assets.defs.dead_runs import release_dead_runs


def _interrupt_recorded() -> bool:
    # Dagster keeps the interrupt it captured in a private flag; there is no public reader.
    from dagster._utils.interrupts import check_captured_interrupt

    return check_captured_interrupt()


def _raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))
    # Wake the thread if it sleeps between pool checks: the exception is raised as soon as
    # Python code runs in it again (here: Dagster's interrupt-recording handler). Not when
    # the default handler is back: it would raise a second KeyboardInterrupt.
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.pthread_kill(thread_id, signal.SIGINT)


class RunGuard:
    """``with RunGuard(instance): job.execute_in_process(...)`` on the main thread."""

    def __init__(self, instance: dg.DagsterInstance, reap_every_s: float = 2.0, poll_s: float = 0.2) -> None:
        self.instance_ref = instance.get_ref() if not instance.is_ephemeral else None
        self.instance = instance
        self.reap_every_s = reap_every_s
        self.poll_s = poll_s
        self.interrupted = False
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._watch, name="vitcow-run-guard", daemon=True)

    def __enter__(self) -> "RunGuard":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        if self.instance_ref is None:
            self._loop(self.instance)
            return
        with dg.DagsterInstance.from_ref(self.instance_ref) as instance:  # its own connections
            self._loop(instance)

    def _loop(self, instance: dg.DagsterInstance) -> None:
        waited = self.reap_every_s
        while not self._stop.wait(self.poll_s):
            if _interrupt_recorded() and not self.interrupted:
                self.interrupted = True
                _raise_in_thread(self._main, KeyboardInterrupt)
            waited += self.poll_s
            if waited >= self.reap_every_s:
                waited = 0.0
                try:
                    release_dead_runs(instance)
                except Exception:  # a busy database: try again at the next round
                    pass
