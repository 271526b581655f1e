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
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from sqlalchemy.exc import SAWarning
from tqdm import tqdm
from traitlets import Unicode

from nbgrader.preprocessors import NbGraderPreprocessor

from ..course import Course
from ..outcome import Ending
from .execute import GradingExecute

NOT_EXECUTED = "NotExecutedError"
STALL_MARGIN = 120  # seconds beyond a notebook's limit before a silent worker pool is stopped


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
            "nbgrader.preprocessors.CheckCellMetadata", "grader.steps.inert.MakeOutputsInert"]},
        executor.__name__: settings,
    }


_worker = {}


def _start_worker(root, settings):
    """Pool initializer: a private gradebook copy and an nbgrader API writing executed notebooks."""
    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader 0.9.6 with SQLAlchemy 2
    course = Course(root)
    overrides = _preprocessors(GradingExecute, settings)
    if course.is_sqlite:
        private = course.work / f"gradebook-worker-{os.getpid()}.db"
        private.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(course.gradebook_file, private)
        overrides["CourseDirectory"] = {"db_url": f"sqlite:///{private}",
                                        "autograded_directory": str(course.executed.relative_to(course.root))}
    _worker["api"] = course.api(**overrides)


def _worst(endings):
    for ending in (Ending.KERNEL_DIED, Ending.TIMED_OUT):
        if ending in endings:
            return ending
    return Ending.COMPLETED


def _execute_one(assignment, student):
    GradingExecute.endings.clear()
    try:
        result = _worker["api"].autograde(assignment, student, force=True, create=True)
        ended = [e for (who, _), e in GradingExecute.endings.items() if who == student]
        if not result.get("success"):
            return Executed(student, None, result.get("error") or "autograde failed")
        return Executed(student, _worst(ended))
    except Exception:
        return Executed(student, None, traceback.format_exc())


def _stop_workers(pool):
    """Kill a pool's worker processes (their sandboxes die with them: --die-with-parent)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        process.kill()


def autograde(course, assignment, students, options):
    """Grade ``students`` (ids with a repaired submission); returns {student: Executed}."""
    settings = {"timeout": options.cell_timeout or course.cell_timeout,
                "notebook_timeout": options.notebook_timeout, "sandbox": options.sandboxed}
    results = {}
    workers = min(options.jobs, max(1, len(students)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=_start_worker, initargs=(str(course.root), settings)) as pool:
        pending = {pool.submit(_execute_one, assignment, s): s for s in students}
        with tqdm(total=len(pending), desc="autograde", unit="student") as progress:
            while pending:
                done, _ = wait(pending, timeout=options.notebook_timeout + STALL_MARGIN,
                               return_when=FIRST_COMPLETED)
                if not done:  # no worker finished anyone in a notebook's time: they are stuck
                    _stop_workers(pool)
                    done = set(pending)
                for future in done:
                    student = pending.pop(future)
                    try:
                        results[student] = future.result(timeout=0)
                    except Exception as error:  # the worker died or was stopped
                        results[student] = Executed(student, None, f"grading worker stopped: {error!r}")
                    progress.update()
    shutil.rmtree(course.work, ignore_errors=True)
    if not course.is_sqlite:  # a server database took the workers' writes directly
        return results

    overrides = _preprocessors(ReplayExecuted, {"executed_directory": str(course.executed)})
    api = course.api(**overrides)
    for student in students:  # a student pass 1 failed is still recorded (as not executed)
        result = api.autograde(assignment, student, force=True, create=True)
        if not result.get("success") and not results[student].error:
            results[student] = Executed(student, None, result.get("error") or "autograde failed")
    return results
