"""Execute and verify on a Dask cluster (``grade --scheduler tcp://host:8786``); the client keeps the rest.

The client (the instructor's machine) keeps the gradebook, the record pass, feedback and the
report; each student's execute + verify runs on a Dask worker, in the same ``worker.Worker`` as
the local pool, with the worker's own warm sandbox.

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
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from distributed import Client, WorkerPlugin, as_completed, get_worker

from . import autograde
from .worker import Worker, failed

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
        return failed(student, started)


def grade_on_cluster(course, assignment, students, options, seed):
    """Each student's Graded from the cluster at ``options.scheduler``, its files written locally."""
    with Client(options.scheduler, timeout=CONNECT_TIMEOUT) as client:
        name = f"grader-{uuid.uuid4().hex}"
        client.register_plugin(CoursePlugin(course_files(course, assignment), options), name=name)
        try:
            futures = {client.submit(_grade_task, name, assignment, student,
                                     _read(course.root, course.submission(student, assignment)), seed,
                                     key=f"{name}-{student}", pure=False): student
                       for student in students}
            for future in as_completed(futures):
                student = futures[future]
                try:
                    graded = future.result()
                except Exception:  # lost on every worker it was tried on (KilledWorker): a person looks
                    graded = failed(student, time.monotonic())
                shutil.rmtree(autograde.output_folder(course, student, assignment), ignore_errors=True)
                _write(course.root, graded.files)
                yield graded
        finally:
            client.unregister_worker_plugin(name)
