"""Where things are in a course: paths and the nbgrader command, shared by every step."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

REPO_ROOT = Path(__file__).resolve().parent.parent


class Course:
    """A course root laid out as in grader/nbgrader_config.py (the repo, or a copy of it)."""

    def __init__(self, root=REPO_ROOT):
        self.root = Path(root).resolve()
        self.grader = self.root / "grader"
        self.solutions = self.root / "solutions"
        self.release = self.root / "notebooks"
        self.submitted = self.grader / "submitted"
        self.autograded = self.grader / "autograded"
        self.feedback = self.grader / "feedback"
        self.gradebook = self.grader / "gradebook.db"

    @property
    def db_url(self):
        return os.environ.get("COURSE_DB_URL", f"sqlite:///{self.gradebook}")

    def assignments(self):
        return sorted(p.name for p in self.solutions.iterdir() if p.is_dir())

    def release_notebooks(self, assignment):
        return sorted((self.release / assignment).glob("*.ipynb"))

    def config(self, **overrides):
        """The course's nbgrader config (as stock commands read it), with ``overrides`` merged.

        overrides: {"Class": {"trait": value}}.
        """
        config = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
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
        for folder in ("solutions", "notebooks"):
            shutil.copytree(self.root / folder, dest / folder,
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
