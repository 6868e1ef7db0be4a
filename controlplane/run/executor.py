"""Where independent runs execute: in this process, in local worker processes, or on a Dask cluster.

One interface (:class:`Executor`) for every loop of independent runs: the points of a sweep
(controlplane/run/sweep.py), the variants of ``softdpu run NAME -j N`` (controlplane/run/experiment.py
``run_variants``) and the seed/variant loops of experiments that run them themselves.

- ``-j 1`` (:class:`InlineExecutor`): each task runs here, one after another.
- ``-j N`` (:class:`ProcessExecutor`): N local worker processes (``concurrent.futures``
  with the ``forkserver`` start method: workers fork from a clean, single-threaded server that
  has the package imported, so a worker starts in milliseconds and inherits no threads).
- ``--scheduler tcp://HOST:PORT`` (:class:`DaskExecutor`): the tasks go to an existing Dask
  distributed cluster (``dask scheduler`` + ``dask worker``, or dask-jobqueue on Slurm). Dask is
  an optional extra (``pip install 'softdpu[sweep]'``), imported only here and only then. The
  scheduler reschedules the tasks of a worker that dies.

A task is a module-level function and picklable arguments; it runs in a fresh scenario, so
where it runs does not change its result (one scenario + one seed = the same bytes). Tasks must
not rely on state left by another task in the same worker. A Python program that makes a
``ProcessExecutor`` must guard its entry point with ``if __name__ == "__main__":`` (the workers
import the main module, as with any ``multiprocessing`` start method but fork).

Inside a task the current executor is always the inline one: a task that itself loops over
runs (an experiment's ``run()`` executed as one sweep point) runs them serially, no nested pools.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator


def cores() -> int:
    """The CPU cores this process may use (its affinity mask), the default number of workers."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class Outcome:
    """What one task gave: its return value, or the exception it raised (``error`` is its one-line
    text, ``exception`` the exception when it could be carried back); where and how long it ran."""

    index: int
    value: Any = None
    error: str | None = None
    exception: BaseException | None = None
    wall_s: float = 0.0
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def error_text(exc: BaseException) -> str:
    """One line naming the exception type and its message."""
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (to come back from a worker), else a RuntimeError with its text
    and traceback; attributes that hold live objects (a partial Result's network) are dropped."""
    if getattr(exc, "partial", None) is not None:
        exc.partial = None
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return RuntimeError(f"{error_text(exc)}\n{tb}")


def _call(fn: Callable, arg, index: int, quiet: bool, portable: bool = True) -> Outcome:
    """Run one task (in whichever process it landed) and wrap what it gave in an Outcome; an
    exception is made portable (picklable, live attributes dropped) unless ``portable`` is False:
    in this process (``-j 1``) it stays as raised, so a stopped run's partial results (its
    ``partial`` Result) can still be written by the caller."""
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    sink = open(os.devnull, "w") if quiet else None
    try:
        with contextlib.ExitStack() as stack:
            if sink is not None:
                stack.enter_context(contextlib.redirect_stdout(sink))
                stack.enter_context(contextlib.redirect_stderr(sink))
            stack.enter_context(use(InlineExecutor()))
            value = fn(arg)
        return Outcome(index, value=value, wall_s=time.perf_counter() - t0, worker=worker)
    except Exception as exc:        # noqa: BLE001 - every failure of a task is reported, none stops the loop
        return Outcome(index, error=error_text(exc), exception=_portable(exc) if portable else exc,
                       wall_s=time.perf_counter() - t0,
                       worker=worker)
    finally:
        if sink is not None:
            sink.close()


class Executor:
    """Runs tasks ``fn(arg)``; :meth:`run` yields an :class:`Outcome` per task as each completes.
    ``quiet``: a task's prints are discarded (a sweep's workers would otherwise write over its
    progress bar)."""

    jobs: int = 1
    name: str = "inline"

    def run(self, fn: Callable, args: Iterable, quiet: bool = False, keys: list[str] | None = None) -> Iterator[Outcome]:
        raise NotImplementedError

    def map(self, fn: Callable, args: Iterable, quiet: bool = False,
            on_done: Callable[[Outcome], None] | None = None) -> list:
        """The values of ``fn(arg)`` in the order of ``args``. ``on_done`` is called with each Outcome
        as it completes (progress lines). The first task that fails stops the loop: the tasks not yet
        started are cancelled and its exception is raised."""
        outcomes: dict[int, Outcome] = {}
        it = self.run(fn, list(args), quiet=quiet)
        try:
            for o in it:
                outcomes[o.index] = o
                if on_done is not None:
                    on_done(o)
                if not o.ok:
                    raise o.exception if o.exception is not None else RuntimeError(o.error)
        finally:
            it.close()
        return [outcomes[i].value for i in sorted(outcomes)]

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InlineExecutor(Executor):
    """Every task here, in order (``-j 1``)."""

    def run(self, fn, args, quiet=False, keys=None):
        for i, arg in enumerate(args):
            o = _call(fn, arg, i, quiet, portable=False)
            yield o


def _worker_init() -> None:
    # a worker process of a pool: no SIGINT (Ctrl-C goes to the parent, which shuts the pool down),
    # no per-run progress bars (controlplane/run/scenario.py: the workers share one terminal)
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["SOFTDPU_WORKER"] = "1"


class ProcessExecutor(Executor):
    """``jobs`` local worker processes (``-j N``)."""

    name = "processes"

    def __init__(self, jobs: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        self.jobs = int(jobs)
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["controlplane.run.executor", "controlplane.run.scenario", "controlplane.run.sweep"])
        self.pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx, initializer=_worker_init)

    def run(self, fn, args, quiet=False, keys=None):
        from concurrent.futures import as_completed
        futures = {self.pool.submit(_call, fn, arg, i, quiet): i for i, arg in enumerate(args)}
        try:
            for fut in as_completed(futures):
                exc = fut.exception()
                if exc is not None:          # the worker process died (a crash in C): the task failed
                    yield Outcome(futures[fut], error=error_text(exc), exception=exc)
                else:
                    yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __exit__(self, kind, *exc) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            # Ctrl-C: stop the runs in progress too (the workers ignore SIGINT), do not wait for them
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
            self.pool.shutdown(wait=False, cancel_futures=True)
        else:
            self.close()


class DaskExecutor(Executor):
    """The tasks of an existing Dask distributed cluster (``--scheduler tcp://HOST:PORT``)."""

    name = "dask"

    def __init__(self, address, timeout: float = 30.0):
        """``address``: the scheduler's (tcp://HOST:PORT), or a ``distributed.Client`` already made
        (closed with this executor)."""
        try:
            from distributed import Client
        except ImportError:
            from controlplane.config.values import UsageError
            raise UsageError("--scheduler needs Dask distributed: pip install 'softdpu[sweep]'") from None
        if isinstance(address, Client):
            self.client, address = address, address.scheduler.address
        else:
            try:
                self.client = Client(address, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as e:
                from controlplane.config.values import UsageError
                raise UsageError(f"--scheduler {address}: cannot reach the Dask scheduler ({e})") from None
        info = self.client.scheduler_info()
        self.jobs = max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))
        self.address = address

    def run(self, fn, args, quiet=False, keys=None):
        from distributed import as_completed
        args = list(args)
        stamp = f"{os.getpid()}-{time.time_ns()}"
        futures = []
        for i, arg in enumerate(args):
            key = f"softdpu-{keys[i] if keys else i}-{stamp}"
            # quiet=False: a worker may run tasks in several threads, and redirecting stdout is
            # process-wide; what a task prints goes to the worker's log
            futures.append(self.client.submit(_call, fn, arg, i, False, key=key, pure=False))
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in as_completed(futures, loop=self.client.loop):
                if fut.status == "finished":
                    yield fut.result()
                else:                            # lost too often (workers killed) or cancelled
                    try:
                        exc = fut.exception()
                    except Exception as e:       # noqa: BLE001
                        exc = e
                    yield Outcome(index[fut.key], error=error_text(exc), exception=exc)
        finally:
            for fut in futures:
                fut.release()

    def close(self) -> None:
        self.client.close()


def make(jobs: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor of ``-j N`` / ``--scheduler ADDRESS``: Dask when a scheduler is given, else
    N local worker processes (N = :func:`cores` when None), or this process when N is 1."""
    if scheduler:
        return DaskExecutor(scheduler)
    jobs = cores() if jobs is None else int(jobs)
    if jobs < 1:
        from controlplane.config.values import UsageError
        raise UsageError(f"-j must be >= 1, got {jobs}")
    return InlineExecutor() if jobs == 1 else ProcessExecutor(jobs)


_STATE = threading.local()       # per thread: a Dask worker may run several tasks at once in threads


def current() -> Executor:
    """The executor that loops of runs use now (``softdpu run -j N`` sets it; inline by default)."""
    stack = getattr(_STATE, "stack", None)
    return stack[-1] if stack else InlineExecutor()


@contextlib.contextmanager
def use(ex: Executor):
    """Make ``ex`` the current executor (of this thread) inside the ``with`` block."""
    if not hasattr(_STATE, "stack"):
        _STATE.stack = []
    _STATE.stack.append(ex)
    try:
        yield ex
    finally:
        _STATE.stack.pop()


__all__ = ["Executor", "InlineExecutor", "ProcessExecutor", "DaskExecutor", "Outcome", "make", "current", "use",
           "cores", "error_text"]
