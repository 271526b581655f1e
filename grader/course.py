"""The course: its layout, ids and defaults, read once from the nbgrader config stock commands read.

Every path a step uses comes from here. nbgrader's own folders (source, release, submitted,
autograded, feedback, downloads) and the gradebook URL are the ``CourseDirectory`` settings of
``grader/nbgrader_config.py``; the grader's private folders (originals, executed notebooks,
reports, scratch) sit beside them under ``grader/``. ``GradeOptions`` holds every knob of a
grading run, each default written once.
"""
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

REPO_ROOT = Path(__file__).resolve().parent.parent
SQLITE_PREFIX = "sqlite:///"


@dataclass(frozen=True)
class GradeOptions:
    """How a grading run behaves: shared by the CLI, the batch, the demo and the benchmark.

    cell_timeout None means the course's ``Execute.timeout`` (what stock nbgrader uses);
    scheduler None grades on this machine, else the address of a Dask scheduler
    (``tcp://host:8786``) whose workers execute and verify (``grader/runtime/distributed.py``).
    """
    jobs: int = os.cpu_count() or 1
    cell_timeout: int | None = None
    notebook_timeout: int = 300
    verify_timeout: int = 30
    sandboxed: bool = True
    scheduler: str | None = None


class Course:
    """A course root laid out by its nbgrader config (the repository, or a copy of it)."""

    def __init__(self, root=REPO_ROOT):
        self.root = Path(root).resolve()
        self._config = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
        directory = self._config.CourseDirectory
        self.course_id = directory.course_id
        self.db_url = directory.db_url
        self.solutions = self.root / directory.source_directory
        self.release = self.root / directory.release_directory
        self.submitted = self.root / directory.submitted_directory
        self.autograded = self.root / directory.autograded_directory
        self.feedback = self.root / directory.feedback_directory
        self.downloaded = self.root / self._config.ZipCollectApp.downloaded_directory
        self.exchange = Path(self._config.Exchange.root)
        self.cell_timeout = self._config.Execute.timeout
        self.grader = self.root / "grader"
        self.originals = self.grader / "originals"  # each student's files as collected
        self.executed = self.grader / "executed"    # pass 1's executed notebooks
        self.reports = self.grader / "reports"
        self.work = self.grader / "work"            # scratch: private gradebook copies

    @property
    def is_sqlite(self):
        return self.db_url.startswith(SQLITE_PREFIX)

    @property
    def gradebook_file(self):
        """The SQLite gradebook's path (None for a server database such as PostgreSQL)."""
        return Path(self.db_url[len(SQLITE_PREFIX):]) if self.is_sqlite else None

    def assignments(self):
        return sorted(p.name for p in self.solutions.iterdir() if p.is_dir())

    def release_notebooks(self, assignment):
        return sorted((self.release / assignment).glob("*.ipynb"))

    def submission(self, student, assignment):
        return self.submitted / student / assignment

    def config(self, **overrides):
        """The course's nbgrader config (as stock commands read it), with ``overrides`` merged.

        overrides: {"Class": {"trait": value}}.
        """
        config = Config(self._config)
        config.CourseDirectory.root = str(self.root)
        config.merge(Config(overrides))
        return config

    def api(self, **overrides):
        """nbgrader's Python API on this course."""
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        config = self.config(**overrides)
        return NbGraderAPI(CourseDirectory(config=config), config=config)

    def copy_to(self, dest):
        """A new course at ``dest`` with this one's solutions, release and nbgrader config."""
        dest = Path(dest)
        for folder in (self.solutions, self.release):
            shutil.copytree(folder, dest / folder.relative_to(self.root),
                            ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        (dest / "grader").mkdir(parents=True, exist_ok=True)
        shutil.copy(self.root / "nbgrader_config.py", dest)
        shutil.copy(self.grader / "nbgrader_config.py", dest / "grader")
        return Course(dest)

    def nbgrader(self, *args, check=True, **kwargs):
        """Run a stock nbgrader command in this course, with the venv's tools on PATH."""
        bindir = str(Path(sys.executable).parent)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        env.update(kwargs.pop("env", {}))
        return subprocess.run([os.path.join(bindir, "nbgrader"), *args],
                              cwd=self.root, env=env, check=check, text=True,
                              capture_output=True, **kwargs)
