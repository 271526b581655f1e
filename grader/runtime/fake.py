"""``InProcessRuntime``: grading in this process, without a sandbox, for unit tests.

Like httpx's mock transport, it keeps the interface and drops the machinery: no worker
processes, no warm sandbox (kernels and verification runs are plain subprocesses), one student
at a time and only when the caller asks for the next result, so a test sees exactly what the
batch does between two students. ``events`` lists, in order, each student graded and each task
run; ``order`` (a list of students) makes them finish in that order instead of the given one.
"""
from concurrent.futures import Future
from contextlib import contextmanager

from .base import Runtime
from .worker import Worker


class InProcessRuntime(Runtime):
    """Grades in the calling process; refuses sandboxed options (the sandbox needs the real runtime)."""

    def __init__(self, course, options, order=None):
        if options.sandboxed:
            raise ValueError("InProcessRuntime runs student code without a sandbox: pass sandboxed=False")
        self.course, self.options, self.order = course, options, order
        self.events = []
        self._worker = None

    @contextmanager
    def workers(self, count):
        self._worker = Worker(self.course.root, self.options)
        try:
            yield self
        finally:
            self._worker = None

    def grade(self, assignment, students, seed):
        ordered = sorted(students, key=self.order.index) if self.order else list(students)
        for student in ordered:
            graded = self._worker.grade_and_record(assignment, student, seed)
            self.events.append(("graded", student))
            yield graded

    def submit(self, function, *args):
        future = Future()
        try:
            future.set_result(function(*args))
        except Exception as error:
            future.set_exception(error)
        self.events.append((function.__name__, *(a for a in args if isinstance(a, str))))
        return future
