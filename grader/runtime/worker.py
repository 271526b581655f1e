"""One worker's grading work: execute (autograde's pass 1) and verify a student, record them (pass 2).

The same ``Worker`` grades in the local pool's processes, on a Dask worker and in the test's own
process. It is built once per process: its nbgrader APIs are made on first use (pass 1 with
SQLite on a private copy of the gradebook), and with the sandbox on its kernels and verification
runs are forked by the run's warm sandbox (``sandbox.warm``), so importing torch is paid once
per run, not once per student. What it found comes back as a return value (``Graded``).
"""
import logging
import threading
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from sqlalchemy.exc import SAWarning

from ..course import Course
from ..sandbox import warm
from ..steps import autograde
from .base import Graded, failed


class Worker:
    """A process's set-up for grading one course; one student at a time.

    A student's verification runs beside their execution, in a thread: it reads the submission,
    not the executed notebook, and each waits on a sandboxed process of its own, so a student
    whose code loops pays the time limit once, not twice.

    sandbox: the socket of the run's warm sandbox, or None (with the sandbox on: start one here).
    """

    def __init__(self, root, options, sandbox=None):
        from ..steps import verify  # torch: in the workers only; the main process never needs it
        self.verify = verify
        warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader 0.9.6 with SQLAlchemy 2
        logging.getLogger("traitlets").setLevel(logging.WARNING)  # no per-file log from its apps
        self.course, self.options = Course(root), options
        if options.sandboxed:
            warm.use(sandbox)
        self.lock = threading.Lock()  # nbgrader's apps are not for two threads at once
        self.verifier = ThreadPoolExecutor(max_workers=1)
        self._executing = self._recording = None

    def _verify(self, assignment, student, seed):
        started = time.monotonic()
        verification = self.verify.verify_student(self.course, assignment, student, self.options, seed)
        return verification, time.monotonic() - started

    def grade(self, assignment, student, seed):
        """Execute and verify one student (pass 1, not recorded); a Graded."""
        started = time.monotonic()
        with self.lock:
            if self._executing is None:
                self._executing = autograde.executing_api(self.course, self.options)
            seconds = {"start-up": time.monotonic() - started}
            verifying = None
            if self.verify.spec_for(assignment) is not None:
                verifying = self.verifier.submit(self._verify, assignment, student, seed)
            started = time.monotonic()
            executed = autograde.execute(self._executing, self.course, assignment, student)
            seconds["execute"] = time.monotonic() - started
            verification = None
            if verifying is not None:
                verification, seconds["verify"] = verifying.result()
            return Graded(executed, verification, seconds)

    def record(self, assignment, graded):
        """Record one student's pass 1 in the gradebook (pass 2); the Graded with its seconds."""
        started = time.monotonic()
        try:
            with self.lock:
                if self._recording is None:  # a Course of its own: Course.config() merges
                    # overrides into nested sections it shares, so pass 1's would leak into pass 2's
                    self._recording = autograde.recording_api(Course(self.course.root))
                executed = autograde.record(self._recording, self.course, assignment, graded.executed)
        except Exception:
            executed = autograde.Executed(graded.student, None, traceback.format_exc())
        return replace(graded, executed=executed, files={},
                       seconds={**graded.seconds, "record": time.monotonic() - started})

    def grade_and_record(self, assignment, student, seed):
        """Execute, verify and record one student of this worker's course; never raises."""
        started = time.monotonic()
        try:
            return self.record(assignment, self.grade(assignment, student, seed))
        except Exception:
            return failed(student, traceback.format_exc(), time.monotonic() - started)
