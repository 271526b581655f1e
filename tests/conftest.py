"""Shared fixtures: a private copy of the course, so tests never touch the repo's gradebook."""
import shutil
from pathlib import Path

import pytest

from grader.course import REPO_ROOT, Course


def copy_course(dest):
    """A course root at ``dest`` with the repo's solutions, release and nbgrader config."""
    dest = Path(dest)
    for folder in ("solutions", "notebooks"):
        shutil.copytree(REPO_ROOT / folder, dest / folder,
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    (dest / "grader").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", dest)
    shutil.copy(REPO_ROOT / "grader" / "nbgrader_config.py", dest / "grader")
    return Course(dest)


@pytest.fixture(scope="session")
def released_course(tmp_path_factory):
    """A course copy whose assignments are generated into its gradebook (hidden tests stored)."""
    course = copy_course(tmp_path_factory.mktemp("course"))
    for assignment in course.assignments():
        course.nbgrader("generate_assignment", assignment, "--force")
    return course
