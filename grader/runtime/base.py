"""Where grading runs: one interface, in the manner of httpx's transports.

A ``Runtime`` takes a class of students and yields each student's ``Graded`` (executed,
verified and recorded in the gradebook) as it finishes, in completion order; it also runs the
run's other trusted tasks (feedback pages) beside the grading (``submit``). A student the
runtime could not grade (its worker died or stalled, a task raised) comes back as a ``Graded``
with the reason in ``executed.error``: a failure is a result of the same type, for that student
only. Implementations: ``local.LocalRuntime`` (this machine's pool), ``distributed.DaskRuntime``
(a Dask cluster), ``fake.InProcessRuntime`` (this process, no sandbox: unit tests).
"""
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

from ..steps import autograde

STALL_MARGIN = 120  # seconds beyond a student's time limits before a silent worker is stopped


@dataclass(frozen=True)
class Graded:
    """One student's pass 1 (recorded or not) and verification, and the seconds each part took.

    verification: a ``grader.steps.verify.Verification`` or None (no spec, or not reached).
    files: pass 1's output folder as {path relative to the course root: bytes}; filled only
    where the worker's disk is not the course's (Dask).
    """
    executed: autograde.Executed
    verification: object = None
    seconds: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)

    @property
    def student(self):
        return self.executed.student


def failed(student, error, seconds=0.0):
    """The Graded of a student nobody could grade (``error``: why); a person must look."""
    return Graded(autograde.Executed(student, None, error), None, {"execute": seconds})


def stall_limit(options):
    """Seconds one student may hold a worker: their notebook's and verification's limits and a margin."""
    return options.notebook_timeout + options.verify_timeout + STALL_MARGIN


class Runtime(ABC):
    """Where a run's students are graded; a context manager around ``workers``."""

    def start(self):
        """Begin slow set-up (a warm sandbox importing torch) while the run repairs and scans."""

    def ready(self):
        """Wait for ``start``'s set-up; raises ``SandboxUnavailable`` if the sandbox did not start."""

    @abstractmethod
    def workers(self, count):
        """A context manager: ``count`` workers for ``grade`` and ``submit``, ended on exit."""

    @abstractmethod
    def grade(self, assignment, students, seed) -> Iterator[Graded]:
        """Each student's Graded, recorded in the gradebook, once, as each finishes."""

    @abstractmethod
    def submit(self, function, *args) -> Future:
        """Run ``function(*args)`` (picklable, trusted) on a worker; its Future."""

    def close(self):
        """End what ``start`` began."""
