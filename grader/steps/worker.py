"""One student's grading work in a worker process: execute (autograde's pass 1), verify, record.

The same ``Worker`` executes and verifies in the local process pool and on a Dask worker
(``distributed.py``). A worker process sets itself up once, on its first student: an nbgrader
API for pass 1 (with SQLite, on a private copy of the gradebook) and, with the sandbox on, its
connection to the run's warm fork server (a Dask worker starts its own), so that importing
torch is paid once per run, not once per student. Recording (pass 2) happens on this machine's
pool: in the same task when the student was executed here, in a task of its own when a Dask
worker executed it. What a task found comes back as data (``Graded``).
"""
import logging
import threading
import time
import traceback
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field, replace
from multiprocessing import forkserver, get_context

from sqlalchemy.exc import SAWarning

from ..course import Course
from ..sandbox.forkserver import ForkServer
from . import autograde


@dataclass(frozen=True)
class Graded:
    """One student's pass 1 (recorded or not) and verification, and the seconds each part took.

    files: pass 1's output folder as {path relative to the course root: bytes}; filled only
    where the worker's disk is not the course's (Dask).
    """
    executed: autograde.Executed
    verification: "verify.Verification | None"
    seconds: dict
    files: dict = field(default_factory=dict)


class Worker:
    """A worker process's set-up for grading one course; one student at a time.

    A student's verification runs beside their execution, in a thread: it reads the submission,
    not the executed notebook, and each waits on a sandboxed process of its own, so a student
    whose code loops pays the time limit once, not twice.
    """

    def __init__(self, root, options):
        from . import verify  # torch: in the workers only; the main process never needs it
        self.verify = verify
        warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader 0.9.6 with SQLAlchemy 2
        self.course, self.options = Course(root), options
        self.api = autograde.executing_api(self.course, options)
        self.lock = threading.Lock()  # nbgrader's apps and GradingExecute.endings are per process
        self.verifier = ThreadPoolExecutor(max_workers=1)
        if options.sandboxed:
            ForkServer.instance()  # connect to the run's warm sandbox (or start this process's own)

    def _verify(self, assignment, student, seed):
        started = time.monotonic()
        verification = self.verify.verify_student(self.course, assignment, student, self.options, seed)
        return verification, time.monotonic() - started

    def grade(self, assignment, student, seed):
        with self.lock:
            verifying = None
            if self.verify.spec_for(assignment) is not None:
                verifying = self.verifier.submit(self._verify, assignment, student, seed)
            started = time.monotonic()
            executed = autograde.execute(self.api, assignment, student)
            seconds = {"execute": time.monotonic() - started}
            verification = None
            if verifying is not None:
                verification, seconds["verify"] = verifying.result()
            return Graded(executed, verification, seconds)


def failed(student, started):
    """The Graded of a student whose worker could not grade at all (a person must look)."""
    return Graded(autograde.Executed(student, None, traceback.format_exc()), None,
                  {"execute": time.monotonic() - started})


STALL_MARGIN = 120  # seconds beyond a student's time limits before a silent pool is stopped
_workers = {}    # (course root, options) -> this process's Worker
_recorders = {}  # course root -> (Course, this process's nbgrader API for pass 2)


def _record(root, assignment, graded):
    started = time.monotonic()
    if root not in _recorders:
        course = Course(root)
        _recorders[root] = course, autograde.recording_api(course)
    course, api = _recorders[root]
    executed = autograde.record(api, course, assignment, graded.executed)
    return replace(graded, executed=executed,
                   seconds={**graded.seconds, "record": time.monotonic() - started})


def _grade_here(root, options, assignment, student, seed):
    """Pool task: execute, verify and record one student of the course at ``root``."""
    started = time.monotonic()
    try:
        if (root, options) not in _workers:
            _workers[(root, options)] = Worker(root, options)
        set_up = time.monotonic() - started
        graded = _record(root, assignment, _workers[(root, options)].grade(assignment, student, seed))
        return replace(graded, seconds={**graded.seconds, "start-up": set_up})
    except Exception:
        return failed(student, started)


def _record_here(root, assignment, graded):
    """Pool task: record one student executed elsewhere."""
    started = time.monotonic()
    try:
        return _record(root, assignment, graded)
    except Exception:
        return replace(failed(graded.executed.student, started), verification=graded.verification)


def _start_worker(shared):
    """A pool worker's start: as the CLI, no SQLAlchemy warnings from nbgrader 0.9.6 and no
    per-file log from its apps; jobs forked by the run's warm server at ``shared`` (a socket)."""
    warnings.filterwarnings("ignore", category=SAWarning)
    logging.getLogger("traitlets").setLevel(logging.WARNING)
    ForkServer.shared = shared


PRELOADED = ["grader.steps.worker", "grader.steps.verify", "grader.steps.feedback"]


def _context():
    context = get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context


def start_forkserver():
    """Start multiprocessing's fork server now; it imports ``PRELOADED`` while the run goes on."""
    _context()
    forkserver.ensure_running()


def local_pool(jobs, shared=None):
    """The run's worker processes, forked from multiprocessing's fork server.

    That server is a fresh process (the grader's threads and sandbox are not forked) which
    imports nbgrader and torch once (``PRELOADED``); every worker of every pool of this grading
    process starts from it already warm and shares those pages with it. shared: the socket of
    the run's warm sandbox server (``sandbox.forkserver.Server``), or None.
    """
    return ProcessPoolExecutor(max_workers=jobs, mp_context=_context(), initializer=_start_worker,
                               initargs=(str(shared) if shared else None,))


def grade_locally(pool, course, assignment, students, options, seed):
    """Each student's Graded (recorded), as the pool's workers finish them.

    A pool that finishes nobody within a student's time limits (+ STALL_MARGIN) is stuck: its
    processes are stopped and its students' Graded say so (a person must look).
    """
    pending = {pool.submit(_grade_here, str(course.root), options, assignment, s, seed): s for s in students}
    stall = options.notebook_timeout + options.verify_timeout + STALL_MARGIN
    while pending:
        done, _ = wait(pending, timeout=stall, return_when=FIRST_COMPLETED)
        if not done:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()  # their jobs end with the run's warm server
            done = set(pending)
        for future in done:
            student = pending.pop(future)
            try:
                yield future.result(timeout=0)
            except Exception:  # the worker died or was stopped
                yield failed(student, time.monotonic())


def record_locally(pool, course, assignment, stream):
    """Each Graded of ``stream`` (executed elsewhere, its files already written here) recorded on
    the pool, as they finish."""
    futures = [pool.submit(_record_here, str(course.root), assignment, replace(graded, files={}))
               for graded in stream]
    for future in as_completed(futures):
        yield future.result()
