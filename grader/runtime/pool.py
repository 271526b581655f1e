"""The local pool: this machine's worker processes, each holding one task at a time.

Unlike ``concurrent.futures.ProcessPoolExecutor``, whose every pending task fails with
``BrokenProcessPool`` when one worker dies, a worker that dies (an OOM kill, a signal) or stalls
here costs only the task it held: that task's future fails with ``WorkerLost`` saying how the
worker ended, a fresh worker takes its place, and every other task goes on. Workers are forked
from multiprocessing's fork server, which imports the grader's modules once (``preload_pool``):
each starts warm and shares torch's pages with it.
"""
import collections
import multiprocessing
import os
import signal
import threading
import time
import traceback
from concurrent.futures import Future
from multiprocessing import forkserver
from multiprocessing.connection import wait

PRELOADED = ["grader.runtime.worker", "grader.steps.verify", "grader.steps.feedback"]
STOP_TIMEOUT = 10  # seconds for an idle worker to end when the pool closes, then it is killed


class WorkerLost(RuntimeError):
    """The worker process holding a task died or stalled; the message says how."""


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context


def preload_pool():
    """Start multiprocessing's fork server now; it imports ``PRELOADED`` while the run goes on."""
    _context()
    forkserver.ensure_running()


def _serve(connection, make_state):
    """A worker process: build its state once, then run each task it is sent, one at a time.

    A task is (method name or None, function or None, args); the reply ("ok", result) or
    ("error", traceback text).
    """
    state = make_state[0](*make_state[1]) if make_state else None
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        method, function, args = task
        try:
            reply = ("ok", getattr(state, method)(*args) if method else function(*args))
        except BaseException:
            reply = ("error", traceback.format_exc())
        try:
            connection.send(reply)
        except Exception:  # a result that does not pickle
            connection.send(("error", traceback.format_exc()))


def _how_it_ended(process):
    process.join(1)
    code = process.exitcode
    if code is None:
        return "did not end"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    return f"exited with code {code}"


class _Slot:
    """One worker process and the task it holds (None when idle)."""

    def __init__(self, context, make_state):
        ours, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, make_state), daemon=True)
        self.process.start()
        theirs.close()
        self.connection = ours
        self.task = self.deadline = None

    def kill(self):
        try:
            os.kill(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class WorkerPool:
    """``jobs`` worker processes; ``submit`` and ``call`` return ``concurrent.futures.Future``.

    make_state: (function, args) run once in each worker process; ``call(method, ...)`` runs
    that state's method. stall_after: seconds a worker may hold one task before it is killed
    (its task then fails with ``WorkerLost``).
    """

    def __init__(self, jobs, make_state=None, stall_after=None):
        self._context, self._make_state, self._stall_after = _context(), make_state, stall_after
        self._queue = collections.deque()
        self._lock = threading.Lock()
        self._wake_read, self._wake_write = os.pipe()
        self._closing = False
        self._slots = [_Slot(self._context, make_state) for _ in range(jobs)]
        self._thread = threading.Thread(target=self._dispatch, name="worker-pool", daemon=True)
        self._thread.start()

    def submit(self, function, *args, label=None):
        """Run ``function(*args)`` in a worker; its Future."""
        return self._put(None, function, args, label)

    def call(self, method, *args, label=None):
        """Run the worker state's ``method(*args)`` in a worker; its Future."""
        return self._put(method, None, args, label)

    def holding(self):
        """{label: pid} of the tasks being worked on now."""
        with self._lock:
            return {slot.task[1]: slot.process.pid for slot in self._slots if slot.task}

    def _put(self, method, function, args, label):
        future = Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("the pool is closed")
            self._queue.append((future, label, (method, function, args)))
        os.write(self._wake_write, b".")
        return future

    def _assign(self):
        for slot in self._slots:
            while slot.task is None and self._queue:
                future, label, task = self._queue.popleft()
                if not future.set_running_or_notify_cancel():
                    continue
                slot.task = (future, label)
                slot.deadline = None if self._stall_after is None else time.monotonic() + self._stall_after
                try:
                    slot.connection.send(task)
                except Exception:  # a dead worker (found below) or arguments that do not pickle
                    if slot.process.is_alive():
                        slot.task = None
                        future.set_exception(RuntimeError(traceback.format_exc()))

    def _lose(self, index, why):
        """The worker of slot ``index`` is gone: fail its task with ``why``, start a fresh one."""
        slot = self._slots[index]
        slot.kill()
        reason = f"the grading worker process {why}"
        if slot.task:
            slot.task[0].set_exception(WorkerLost(reason))
        slot.connection.close()
        self._slots[index] = _Slot(self._context, self._make_state)

    def _dispatch(self):
        """Hand out tasks and collect results until the pool closes; if this thread itself fails,
        every task not yet done fails with the reason (nobody waits forever)."""
        try:
            self._dispatch_until_closed()
        except BaseException:
            error = RuntimeError(f"the worker pool failed: {traceback.format_exc()}")
            with self._lock:
                self._closing = True
                for slot in self._slots:
                    if slot.task:
                        slot.task[0].set_exception(error)
                        slot.task = None
                for future, _, _ in self._queue:
                    if future.set_running_or_notify_cancel():
                        future.set_exception(error)
                self._queue.clear()

    def _dispatch_until_closed(self):
        while True:
            with self._lock:
                self._assign()
                busy = [s for s in self._slots if s.task]
                if self._closing and not busy and not self._queue:
                    return
                slots = list(self._slots)
            deadlines = [s.deadline for s in busy if s.deadline is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = wait([self._wake_read, *(s.connection for s in slots), *(s.process.sentinel for s in slots)],
                         timeout)
            if self._wake_read in ready:
                os.read(self._wake_read, 4096)
            with self._lock:
                for index, slot in enumerate(self._slots):
                    if slot.task and slot.connection in ready:
                        try:
                            status, value = slot.connection.recv()
                        except (EOFError, OSError):
                            self._lose(index, _how_it_ended(slot.process))
                            continue
                        except Exception:  # a result that does not unpickle here
                            status, value = "error", traceback.format_exc()
                        future, slot.task, slot.deadline = slot.task[0], None, None
                        if status == "ok":
                            future.set_result(value)
                        else:
                            future.set_exception(RuntimeError(value))
                    elif slot.process.sentinel in ready:
                        self._lose(index, _how_it_ended(slot.process))
                    elif slot.task and slot.deadline is not None and time.monotonic() > slot.deadline:
                        self._lose(index, f"stalled (no answer within {self._stall_after} s) and was stopped")

    def close(self, cancel=False):
        """Let the tasks already submitted finish (``cancel``: drop those not started and stop
        those running), then end the workers."""
        with self._lock:
            self._closing = True
            if cancel:
                for future, _, _ in self._queue:
                    future.cancel()
                self._queue.clear()
                for index, slot in enumerate(self._slots):
                    if slot.task:
                        self._lose(index, "was stopped: the run ended early")
        os.write(self._wake_write, b".")
        self._thread.join()
        for slot in self._slots:
            try:
                slot.connection.send(None)
            except OSError:
                pass
        for slot in self._slots:
            slot.process.join(STOP_TIMEOUT)
            if slot.process.is_alive():
                slot.kill()
                slot.process.join()
            slot.connection.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc):
        self.close(cancel=kind is not None)
