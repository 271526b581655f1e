"""Autograde many students in parallel with stock nbgrader, keeping one consistent gradebook.

SQLite takes one writer at a time, and nbgrader's autograde writes to the gradebook as it goes.
So grading runs in two passes per student, both through nbgrader's own ``Autograde`` converter,
both in the worker processes (``grader/runtime/worker.py``):

1. **execute**: each worker process grades its students against a private copy of the
   gradebook, with ``GradingExecute``; the executed notebooks land in ``Course.executed``.
2. **record**: right after, the same worker autogrades the student again against the real
   gradebook, with ``ReplayExecuted`` in place of the executor: it copies the outputs of pass 1
   instead of running anything, and nbgrader's ``SaveAutoGrades`` records the scores. A lock
   keeps one writer at a time; the other workers go on executing meanwhile.

With a server database (PostgreSQL on a hub) the workers write to it directly and pass 2 is
skipped.
"""
import fcntl
import os
import shutil
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from traitlets import Unicode

from nbgrader.preprocessors import NbGraderPreprocessor

from ..outcome import Ending
from ..nbgrader_plugins.execute import GradingExecute

NOT_EXECUTED = "NotExecutedError"


@dataclass(frozen=True)
class Executed:
    """How one student's autograde ended: the worst ending of their notebooks, or an error."""
    student: str
    ending: Ending | None
    error: str = ""


class ReplayExecuted(NbGraderPreprocessor):
    """Fill each cell with the outputs pass 1 produced for it (the notebook is not run again)."""

    executed_directory = Unicode("", help="Root of pass 1's executed notebooks.").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        path = Path(self.executed_directory, info["student"], info["assignment"],
                    info["notebook"] + ".ipynb")
        executed = nbformat.read(path, as_version=4).cells if path.exists() else []
        by_position = len(executed) == len(nb.cells) and all(
            a.source == b.source for a, b in zip(executed, nb.cells))
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if by_position:
                cell.outputs = executed[index].outputs
                cell.execution_count = executed[index].execution_count
            else:
                cell.outputs = [new_output("error", ename=NOT_EXECUTED, evalue="not executed",
                                           traceback=[f"{NOT_EXECUTED}: the grader could not run this notebook"])]
        return nb, resources


def autograde_settings(executor, settings):
    """nbgrader config sections: Autograde with ``executor`` (configured with ``settings``) and the
    course's preprocessors after it (the grader's passes, and formgrader's Autograde button)."""
    executor_class = f"{executor.__module__}.{executor.__qualname__}"
    return {
        "Autograde": {"autograde_preprocessors": [
            executor_class, "nbgrader.preprocessors.IgnorePattern",
            "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
            "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
            "nbgrader.preprocessors.CheckCellMetadata", "grader.steps.inert.MakeOutputsInert"]},
        executor.__name__: settings,
    }


def executing_api(course, options):
    """Pass 1's nbgrader API for one worker process: ``GradingExecute``, and with SQLite a private
    copy of the gradebook and executed notebooks written to ``Course.executed``."""
    settings = {"timeout": options.cell_timeout or course.cell_timeout,
                "notebook_timeout": options.notebook_timeout, "sandbox": options.sandboxed,
                "endings_directory": str(_endings(course))}
    overrides = autograde_settings(GradingExecute, settings)
    if course.is_sqlite:
        private = course.work / f"gradebook-worker-{os.getpid()}.db"
        with gradebook_lock(course):  # not while another worker records
            shutil.copy(course.gradebook_file, private)
        overrides["CourseDirectory"] = {"db_url": f"sqlite:///{private}",
                                        "autograded_directory": str(course.executed.relative_to(course.root))}
    return course.api(**overrides)


def output_folder(course, student, assignment):
    """Where pass 1 leaves a student's executed files (``Course.executed`` with SQLite)."""
    return (course.executed if course.is_sqlite else course.autograded) / student / assignment


def _endings(course):
    """Where this process's executor leaves how each notebook's run ended (``GradingExecute``)."""
    return course.work / f"endings-{os.getpid()}"


def _worst(endings):
    for ending in (Ending.KERNEL_DIED, Ending.TIMED_OUT):
        if ending in endings:
            return ending
    return Ending.COMPLETED


def execute(api, course, assignment, student):
    """Pass 1 for one student, with ``api`` from ``executing_api``; returns Executed."""
    endings = _endings(course) / student
    shutil.rmtree(endings, ignore_errors=True)
    try:
        result = api.autograde(assignment, student, force=True, create=True)
        if not result.get("success"):
            return Executed(student, None, result.get("error") or "autograde failed")
        return Executed(student, _worst(GradingExecute.read_endings(endings)))
    except Exception:
        return Executed(student, None, traceback.format_exc())
    finally:
        shutil.rmtree(endings, ignore_errors=True)


@contextmanager
def gradebook_lock(course):
    """One writer at a time on the SQLite gradebook, across the run's processes."""
    course.work.mkdir(parents=True, exist_ok=True)
    with open(course.work / "gradebook.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def recording_api(course):
    """Pass 2's nbgrader API: ``ReplayExecuted`` on the course's own gradebook."""
    return course.api(**autograde_settings(ReplayExecuted, {"executed_directory": str(course.executed)}))


def record(api, course, assignment, executed):
    """Pass 2 for one student, with ``api`` from ``recording_api``; returns Executed.

    A student pass 1 failed is still recorded (as not executed); a failure to record becomes
    the student's error. With a server database the workers wrote to it directly.
    """
    if not course.is_sqlite:
        return executed
    with gradebook_lock(course):
        result = api.autograde(assignment, executed.student, force=True, create=True)
    if not result.get("success") and not executed.error:
        return Executed(executed.student, None, result.get("error") or "autograde failed")
    return executed


def clean_up(course):
    """Remove the workers' private gradebooks and the lock, once every worker is done."""
    shutil.rmtree(course.work, ignore_errors=True)
