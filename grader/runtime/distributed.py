"""``DaskRuntime``: execute and verify on a Dask cluster (``grade --scheduler tcp://host:8786``).

The client (the instructor's machine) keeps the gradebook, the record pass, feedback and the
report, on a local pool; each student's execute + verify runs on a Dask worker, in the same
``worker.Worker`` as the local pool, with the worker's own warm sandbox. Results stream: each
student is recorded (and their feedback queued) as soon as the cluster returns them, while the
cluster grades the rest.

The course travels with the run, so workers need no shared storage: ``CoursePlugin`` carries the
nbgrader config, the SQLite gradebook (hidden tests included: workers are the grader's machines,
and student code on them runs in the sandbox) and the assignment's source files other than
notebooks; it writes them to a private folder on each worker once per run. Each task carries one
repaired submission folder's files and returns pass 1's output folder as bytes, which the client
writes where the local pool would have and records as usual. A task is pure: it rewrites its
student's folder from the files it carries, so when Dask retries it after losing a worker, the
student is graded again from scratch, and the client keeps one result per student.

Workers need this repository's Python environment (the grader importable, bubblewrap, root for
the sandbox's uids) and should run one thread each (``dask worker --nthreads 1``, ``--nworkers``
for more); a worker grades one student at a time regardless.
"""
import queue
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import replace
from pathlib import Path

from distributed import Client, WorkerPlugin, as_completed, get_worker

from ..steps import autograde
from .base import failed
from .local import LocalRuntime
from .pool import preload_pool
from .worker import Worker

CONNECT_TIMEOUT = "30s"


class CoursePlugin(WorkerPlugin):
    """Sets up a private copy of the course and a warm ``Worker`` on each Dask worker."""

    def __init__(self, files, options):
        self.files, self.options = files, options
        self.worker = self.root = None

    def setup(self, worker):
        self.root = Path(tempfile.mkdtemp(prefix="grader-course-"))
        _write(self.root, self.files)
        self.worker = Worker(self.root, self.options)

    def teardown(self, worker):
        shutil.rmtree(self.root, ignore_errors=True)


def _read(root, folder):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write(root, files):
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def course_files(course, assignment):
    """What a worker needs of the course: config, gradebook (SQLite) and source helper files."""
    files = {name: (course.root / name).read_bytes()
             for name in ("nbgrader_config.py", "grader/nbgrader_config.py")}
    if course.is_sqlite:
        files[str(course.gradebook_file.relative_to(course.root))] = course.gradebook_file.read_bytes()
    helpers = [p for p in (course.solutions / assignment).rglob("*")
               if p.is_file() and p.suffix != ".ipynb" and "__pycache__" not in p.parts]
    files.update({str(p.relative_to(course.root)): p.read_bytes() for p in helpers})
    return files


def _grade_task(plugin_name, assignment, student, submission, seed):
    """On a worker: one student's execute + verify from the submission's files; a Graded."""
    started = time.monotonic()
    try:
        plugin = get_worker().plugins[plugin_name]
        course = plugin.worker.course
        folder = course.submission(student, assignment)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(autograde.output_folder(course, student, assignment), ignore_errors=True)
        _write(course.root, submission)
        graded = plugin.worker.grade(assignment, student, seed)
        output = _read(course.root, autograde.output_folder(course, student, assignment))
        return type(graded)(graded.executed, graded.verification, graded.seconds, output)
    except Exception:
        return failed(student, traceback.format_exc(), time.monotonic() - started)


class DaskRuntime(LocalRuntime):
    """Execute + verify on the cluster at ``options.scheduler``; record and feedback on a local pool."""

    def start(self):
        preload_pool()  # no warm sandbox here: each Dask worker has its own

    def cluster_results(self, assignment, students, seed):
        """Each student's Graded from the cluster, once, as it finishes; its files written here."""
        course, seen = self.course, set()
        with Client(self.options.scheduler, timeout=CONNECT_TIMEOUT) as client:
            name = f"grader-{uuid.uuid4().hex}"
            client.register_plugin(CoursePlugin(course_files(course, assignment), self.options), name=name)
            try:
                futures = {client.submit(_grade_task, name, assignment, student,
                                         _read(course.root, course.submission(student, assignment)), seed,
                                         key=f"{name}-{student}", pure=False): student
                           for student in students}
                for future in as_completed(futures):
                    student = futures[future]
                    if student in seen:  # Dask may finish a retried task twice
                        continue
                    seen.add(student)
                    try:
                        graded = future.result()
                    except Exception:  # lost on every worker it was tried on (KilledWorker): a person looks
                        graded = failed(student, traceback.format_exc())
                    shutil.rmtree(autograde.output_folder(course, student, assignment), ignore_errors=True)
                    _write(course.root, graded.files)
                    yield graded
            finally:
                client.unregister_worker_plugin(name)

    def grade(self, assignment, students, seed):
        """Record each student on the local pool as the cluster returns them, yield as recorded."""
        done = queue.Queue()

        def receive():
            returned = set()
            try:
                for graded in self.cluster_results(assignment, students, seed):
                    returned.add(graded.student)
                    future = self.pool.call("record", assignment, replace(graded, files={}), label=graded.student)
                    future.add_done_callback(lambda f, g=graded: done.put((g, f)))
                why = "the Dask cluster returned no result for this student"
            except Exception:  # the cluster itself failed: every student not yet back goes to a person
                why = f"the Dask cluster failed: {traceback.format_exc().strip().splitlines()[-1]}"
            for student in sorted(set(students) - returned):
                done.put((failed(student, why), None))

        receiver = threading.Thread(target=receive, name="dask-results", daemon=True)
        receiver.start()
        left = set(students)
        while left:  # each student comes back once: recorded, or failed by the receiver
            graded, recorded = done.get()
            left.discard(graded.student)
            if recorded is None:
                yield graded
            else:
                error = recorded.exception()
                yield failed(graded.student, str(error)) if error else recorded.result()
        receiver.join()
