"""Autograde many students in parallel with stock nbgrader, keeping one consistent gradebook.

SQLite takes one writer at a time, and nbgrader's autograde writes to the gradebook as it goes.
So grading runs in two passes, both through nbgrader's own ``Autograde`` converter:

1. **execute** (parallel): each worker process grades its students against a private copy of the
   gradebook, with ``GradingExecute``; the executed notebooks land in ``Course.executed``.
2. **record** (serial): the main process autogrades each student again against the real
   gradebook, with ``ReplayExecuted`` in place of the executor: it copies the outputs of pass 1
   instead of running anything, and nbgrader's ``SaveAutoGrades`` records the scores.

With a server database (PostgreSQL on a hub) the workers write to it directly and pass 2 is
skipped.
"""
import os
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from traitlets import Unicode

from nbgrader.preprocessors import NbGraderPreprocessor

from ..outcome import Ending
from .execute import GradingExecute

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


def _preprocessors(executor, settings):
    executor_class = f"{executor.__module__}.{executor.__qualname__}"
    return {
        "Autograde": {"autograde_preprocessors": [
            executor_class, "nbgrader.preprocessors.IgnorePattern",
            "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
            "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
            "nbgrader.preprocessors.CheckCellMetadata"]},
        executor.__name__: settings,
    }


def executing_api(course, options):
    """Pass 1's nbgrader API for one worker process: ``GradingExecute``, and with SQLite a private
    copy of the gradebook and executed notebooks written to ``Course.executed``."""
    settings = {"timeout": options.cell_timeout or course.cell_timeout,
                "notebook_timeout": options.notebook_timeout, "sandbox": options.sandboxed}
    overrides = _preprocessors(GradingExecute, settings)
    if course.is_sqlite:
        private = course.work / f"gradebook-worker-{os.getpid()}.db"
        private.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(course.gradebook_file, private)
        overrides["CourseDirectory"] = {"db_url": f"sqlite:///{private}",
                                        "autograded_directory": str(course.executed.relative_to(course.root))}
    return course.api(**overrides)


def output_folder(course, student, assignment):
    """Where pass 1 leaves a student's executed files (``Course.executed`` with SQLite)."""
    return (course.executed if course.is_sqlite else course.autograded) / student / assignment


def _worst(endings):
    for ending in (Ending.KERNEL_DIED, Ending.TIMED_OUT):
        if ending in endings:
            return ending
    return Ending.COMPLETED


def execute(api, assignment, student):
    """Pass 1 for one student, with ``api`` from ``executing_api``; returns Executed."""
    GradingExecute.endings.clear()
    try:
        result = api.autograde(assignment, student, force=True, create=True)
        ended = [e for (who, _), e in GradingExecute.endings.items() if who == student]
        if not result.get("success"):
            return Executed(student, None, result.get("error") or "autograde failed")
        return Executed(student, _worst(ended))
    except Exception:
        return Executed(student, None, traceback.format_exc())


def record(course, assignment, results):
    """Pass 2: record pass 1's ``results`` ({student: Executed}) in the gradebook; returns them,
    with any student whose recording failed turned into an error."""
    shutil.rmtree(course.work, ignore_errors=True)  # the workers' private gradebooks
    if not course.is_sqlite:  # a server database took the workers' writes directly
        return results
    overrides = _preprocessors(ReplayExecuted, {"executed_directory": str(course.executed)})
    api = course.api(**overrides)
    for student in results:  # a student pass 1 failed is still recorded (as not executed)
        result = api.autograde(assignment, student, force=True, create=True)
        if not result.get("success") and not results[student].error:
            results[student] = Executed(student, None, result.get("error") or "autograde failed")
    return results
