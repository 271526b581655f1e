"""This machine: a pool of worker processes and, with the sandbox on, the run's warm sandbox.

Each student is one task on the pool: execute, verify and record (``Worker.grade_and_record``).
A worker that dies or stalls costs only the student it held (a ``Graded`` with the reason); the
pool starts a fresh worker and the class goes on. Feedback pages run on the same pool, behind
the grading still to do.
"""
from concurrent.futures import as_completed
from contextlib import contextmanager

from ..sandbox.warm import WarmSandbox
from .base import Runtime, failed, stall_limit
from .pool import WorkerPool, WorkerLost, preload_pool
from .worker import Worker


def _reason(error):
    if isinstance(error, WorkerLost):
        return f"{error} while grading this student"
    return str(error) or type(error).__name__


class LocalRuntime(Runtime):
    """Grading on this machine's processes (``options.jobs`` at most)."""

    def __init__(self, course, options):
        self.course, self.options = course, options
        self.sandbox = self.pool = None

    def start(self):
        """Both import torch while the run repairs and scans: the warm sandbox every worker forks
        its jobs from, and multiprocessing's fork server the workers themselves are forked from."""
        if self.options.sandboxed:
            self.sandbox = WarmSandbox()
        preload_pool()

    def ready(self):
        if self.sandbox:
            self.sandbox.wait_ready()

    @contextmanager
    def workers(self, count):
        sandbox = str(self.sandbox.socket) if self.sandbox else None
        self.pool = WorkerPool(min(count, self.options.jobs), make_state=(
            Worker, (str(self.course.root), self.options, sandbox)), stall_after=stall_limit(self.options))
        with self.pool:  # an error in the run stops the workers rather than waiting for them
            yield self
        self.pool = None

    def grade(self, assignment, students, seed):
        pending = {self.pool.call("grade_and_record", assignment, student, seed, label=student): student
                   for student in students}
        for future in as_completed(pending):
            error = future.exception()
            yield failed(pending[future], _reason(error)) if error else future.result()

    def submit(self, function, *args):
        return self.pool.submit(function, *args)

    def close(self):
        if self.sandbox:
            self.sandbox.close()
            self.sandbox = None
