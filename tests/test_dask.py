"""Grading on a Dask cluster gives exactly what grading here gives, and survives losing a worker.

The test starts a real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 (random
ports, one thread each), grades one small simulated class here and through the scheduler, and
compares the CSV and the text of every feedback page, and that results stream: the first
student's feedback page is written while the cluster still holds the last student. Then it grades the class again, in place
(its gradebook, notebooks and feedback there already), through the scheduler, and kills a worker
while that worker holds a student: no student is lost or doubled, and no row changes.
"""
import csv
import difflib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, replace

import pytest

from grader import batch
from grader.course import Course, GradeOptions
from grader.demo import simulate
from grader.demo.demo import DEMO_ASSIGNMENT, DEMO_NOTEBOOK
from grader.runtime.distributed import DaskRuntime
from grader.steps import collect
from html_text import page_text

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

KINDS = ("correct", "source_mul", "blank", "swapped", "infinite_loop", "kernel_crash",
         "mangled_deleted", "not_a_notebook_empty")
OPTIONS = GradeOptions(jobs=2, cell_timeout=5, notebook_timeout=120, verify_timeout=10)
START_SECONDS = 120  # the scheduler and the workers (importing torch under load) must be up by then
RUN_SECONDS = 600
# What differs between two runs of the same class and is not a grade: sandbox job folders and
# where each machine's Python environment lies (in tracebacks), memory addresses, and execution counts (a kernel that dies in a cell may or may
# not have announced the cell's count first: a race, whichever machine runs it). Blank lines
# differ too (printed lines arrive in one stream output or several, each its own block), so
# pages are compared line by line without the blank ones.
VOLATILE = re.compile(r"grader-runs?-\w+(?:/job-\w+)?|\S*/site-packages/|0x[0-9a-fA-F]+|In\xa0\[[\d\xa0]*\]")


def small_class(course):
    """``course`` (DEMO_ASSIGNMENT generated) with one student of each kind in KINDS, collected."""
    plan = [entry for entry in simulate.simulated_class(course.solutions / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb")
            if entry[0] in KINDS]
    plan = [next(e for e in plan if e[0] == kind) for kind in KINDS]
    files = course.root / "lms_download"
    simulate.write_lms_download(files, course.release / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb", plan)
    archive = course.root / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(files.iterdir()):
            zf.write(path, path.name)
    collect.from_lms(course, DEMO_ASSIGNMENT, archive, "canvas")
    return course


class Cluster:
    """A scheduler and two workers on 127.0.0.1, each its own process group."""

    def __init__(self, folder):
        bindir = os.path.dirname(sys.executable)
        self.env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"],
                        PYTHONPATH=str(Course().root))
        self.dask = os.path.join(bindir, "dask")
        self.folder, self.processes, self.workers = folder, [], []
        scheduler_file = folder / "scheduler.json"
        self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(scheduler_file))
        deadline = time.monotonic() + START_SECONDS
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        from distributed import Client
        self.client = Client(scheduler_file=str(scheduler_file), timeout=START_SECONDS)
        self.address = self.client.scheduler.address
        for number in range(2):
            self.workers.append(self._start("worker", self.address, "--host", "127.0.0.1",
                                            "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                            "--name", f"worker-{number}"))
        self.client.wait_for_workers(2, timeout=START_SECONDS)

    def _start(self, *args):
        log = open(self.folder / f"{args[0]}-{len(self.processes)}.log", "w")
        process = subprocess.Popen([self.dask, *args], cwd=Course().root, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def kill_a_busy_worker(self, deadline):
        """Kill (SIGKILL) the process of a worker that is grading a student right now."""
        pids = self.client.run(os.getpid)
        while time.monotonic() < deadline:
            busy = [address for address, tasks in self.client.processing().items() if tasks]
            if busy:
                os.killpg(pids[busy[0]], signal.SIGKILL)
                return pids[busy[0]]
            time.sleep(0.1)
        raise TimeoutError("no worker picked up a student")

    def stop(self):
        self.client.close()
        for process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("dask"))
    yield cluster
    cluster.stop()


@dataclass(frozen=True)
class Graded:
    """A run's result and what it wrote, read before anything grades the course again."""
    result: batch.BatchResult
    rows: list
    pages: dict


@pytest.fixture(scope="module")
def local(tmp_path_factory, a1_generated):
    course = small_class(a1_generated(tmp_path_factory.mktemp("local") / "course"))
    result = batch.grade(course, DEMO_ASSIGNMENT, OPTIONS)
    return Graded(result, csv_rows(result), feedback_texts(result))


def _copy(result, dest):
    """A copy of a graded course, to grade the same collected class again."""
    root = result.csv.parents[3]
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("reports", "feedback", "autograded", "executed"))
    return Course(dest)


def csv_rows(result):
    with open(result.csv, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def feedback_texts(result):
    return {str(path.relative_to(result.feedback)):
            "\n".join(line for line in VOLATILE.sub("#", page_text(path)).splitlines() if line.strip())
            for path in sorted(result.feedback.glob(f"*/{DEMO_ASSIGNMENT}/*.html"))}


class HeldLastResult(DaskRuntime):
    """The Dask runtime, holding the cluster's last result until the first student's feedback
    page is written (at most RUN_SECONDS): only a runtime that records and writes feedback while
    the cluster still grades gets there. ``events`` says, in order, what happened."""

    def __init__(self, course, options):
        super().__init__(course, options)
        self.events = []

    def cluster_results(self, assignment, students, seed):
        first = None
        for count, graded in enumerate(super().cluster_results(assignment, students, seed), 1):
            if count == len(students):
                page = self.course.feedback / first / assignment / f"{DEMO_NOTEBOOK}.html"
                deadline = time.monotonic() + RUN_SECONDS
                while not page.exists() and time.monotonic() < deadline:
                    time.sleep(0.1)
                self.events.append(("feedback written" if page.exists() else "no feedback yet", first))
            if first is None and graded.executed.ending is not None:
                first = graded.student
            self.events.append(("cluster returned", graded.student))
            yield graded


def test_the_cluster_grades_exactly_as_this_machine(local, cluster, tmp_path):
    """...and streams: the first student's feedback is written before the last student is back."""
    course = _copy(local.result, tmp_path / "course")
    options = replace(OPTIONS, scheduler=cluster.address)
    runtime = HeldLastResult(course, options)
    there = batch.grade(course, DEMO_ASSIGNMENT, options, runtime=runtime)
    assert runtime.events[-2][0] == "feedback written", runtime.events  # then the last came back
    assert csv_rows(there) == local.rows
    pages_there = feedback_texts(there)
    assert local.pages and sorted(pages_there) == sorted(local.pages)
    for page, text in local.pages.items():
        assert pages_there[page] == text, (page, "\n".join(difflib.unified_diff(
            text.splitlines(), pages_there[page].splitlines(), "here", "cluster", lineterm="", n=1)))


def test_grading_again_while_a_worker_dies_changes_nothing(local, cluster):
    course = Course(local.result.csv.parents[3])  # in place: graded once already
    options = replace(OPTIONS, scheduler=cluster.address)
    outcome = {}
    run = threading.Thread(target=lambda: outcome.setdefault("result", batch.grade(course, DEMO_ASSIGNMENT, options)))
    run.start()
    killed = cluster.kill_a_busy_worker(time.monotonic() + RUN_SECONDS)
    run.join(timeout=RUN_SECONDS)
    assert not run.is_alive() and "result" in outcome, "grading did not finish after a worker was killed"
    assert killed not in cluster.client.run(os.getpid).values()
    rows = csv_rows(outcome["result"])
    assert [r["student"] for r in rows] == [r["student"] for r in local.rows]  # each once
    assert rows == local.rows
    assert feedback_texts(outcome["result"]) == local.pages
