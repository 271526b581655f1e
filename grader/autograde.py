"""Autograde many students in parallel with stock nbgrader, keeping one consistent gradebook.

SQLite takes one writer at a time, and nbgrader's autograde writes to the gradebook as it goes.
So grading runs in two passes, both through nbgrader's own ``Autograde`` converter:

1. **execute** (parallel): each worker process grades its students against a private copy of the
   gradebook, with the course's executor; the executed notebooks land in ``grader/executed/``.
2. **record** (serial): the main process autogrades each student again against the real
   gradebook, with ``ReplayExecuted`` in place of the executor: it copies the outputs of pass 1
   instead of running anything, and nbgrader's ``SaveAutoGrades`` records the scores.

With a server database (PostgreSQL on a hub) the workers write to it directly and pass 2 is
skipped. The executor is the one replaceable piece: ``execute_preprocessor`` names its class.
"""
import os
import shutil
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from traitlets import Unicode

from nbgrader.preprocessors import NbGraderPreprocessor

from .course import Course

EXECUTOR = "grader.execute.GradingExecute"
NOT_EXECUTED = "NotExecutedError"


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


def _is_sqlite(course):
    return course.db_url.startswith("sqlite:///")


def _executor_overrides(executor, limits):
    return {
        "Autograde": {"autograde_preprocessors": [
            executor, "nbgrader.preprocessors.IgnorePattern",
            "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
            "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
            "nbgrader.preprocessors.CheckCellMetadata", "grader.inert.MakeOutputsInert"]},
        executor.rsplit(".", 1)[1]: limits,
    }


_worker = {}


def _start_worker(root, executor, limits):
    """Pool initializer: a private gradebook copy and an nbgrader API writing to grader/executed."""
    course = Course(root)
    overrides = _executor_overrides(executor, limits)
    if _is_sqlite(course):
        private = course.grader / "work" / f"gradebook-worker-{os.getpid()}.db"
        private.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(course.db_url[len("sqlite:///"):], private)
        overrides["CourseDirectory"] = {"db_url": f"sqlite:///{private}",
                                        "autograded_directory": "grader/executed"}
    _worker["api"] = course.api(**overrides)


def _execute_one(assignment, student):
    try:
        result = _worker["api"].autograde(assignment, student, force=True, create=True)
        return student, result.get("success", False), result.get("error") or ""
    except Exception:
        return student, False, traceback.format_exc()


def autograde(course, assignment, students, jobs=None, executor=EXECUTOR, limits=None,
              progress=None):
    """Grade ``students`` (ids with a submission in grader/submitted); return {student: error}.

    An empty error means graded. ``progress(student)`` is called as each one finishes pass 1.
    """
    limits = limits or {}
    jobs = jobs or os.cpu_count() or 1
    errors = {}
    with ProcessPoolExecutor(max_workers=min(jobs, max(1, len(students))), mp_context=get_context("spawn"),
                             initializer=_start_worker,
                             initargs=(str(course.root), executor, limits)) as pool:
        futures = [pool.submit(_execute_one, assignment, s) for s in students]
        for future in as_completed(futures):
            student, ok, error = future.result()
            if not ok:
                errors[student] = error
            if progress:
                progress(student)
    shutil.rmtree(course.grader / "work", ignore_errors=True)
    if not _is_sqlite(course):  # a server database took the workers' writes directly
        return errors

    overrides = _executor_overrides("grader.autograde.ReplayExecuted", {})
    overrides["ReplayExecuted"] = {"executed_directory": str(course.grader / "executed")}
    api = course.api(**overrides)
    for student in students:
        result = api.autograde(assignment, student, force=True, create=True)
        if not result.get("success"):
            errors[student] = errors.get(student) or result.get("error") or "autograde failed"
    return errors
