"""Collecting into grader/submitted: from the nbgrader exchange and from an LMS folder download."""
import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from grader.demo import simulate
from grader.steps import collect
from grader.course import Course

A, NB = "a1_backprop", "backprop"


@pytest.fixture
def course(tmp_path):
    course = Course().copy_to(tmp_path / "course")
    course.nbgrader("generate_assignment", A, "--force")
    return course


def test_exchange_submissions_are_collected_by_the_cli(course, tmp_path):
    course.nbgrader("release_assignment", A)
    bindir = os.path.dirname(sys.executable)
    for student in ("alice", "bob"):
        home = tmp_path / student
        shutil.copytree(course.release / A, home / A)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        subprocess.run([os.path.join(bindir, "nbgrader"), "submit", A, "--course=backprop",
                        f"--Exchange.root={course.exchange}",
                        f"--CourseDirectory.student_id={student}"],
                       cwd=home, env=env, check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "grader", "--course", str(course.root), "collect", A,
                             "--exchange"], capture_output=True, text=True, cwd=Course().root)
    assert result.returncode == 0, result.stderr
    assert collect.students(course, A) == ["alice", "bob"]
    assert (course.submitted / "bob" / A / f"{NB}.ipynb").exists()


def test_folder_per_student_download_is_collected(course, tmp_path):
    download = tmp_path / "download"
    correct = simulate.solution_answers(course.solutions / A / f"{NB}.ipynb")
    for student in ("kim", "lee"):
        (download / student).mkdir(parents=True)
        nbformat.write(simulate.build_submission(course.release / A / f"{NB}.ipynb", correct),
                       download / student / f"{NB}.ipynb")
    assert collect.from_lms(course, A, download, "folders") == ["kim", "lee"]


def test_bad_pattern_and_missing_download_are_the_instructors_errors(course, tmp_path):
    with pytest.raises(collect.CollectError, match="student_id"):
        collect.from_lms(course, A, tmp_path, r".*/(?P<file_id>.+)\.ipynb")
    with pytest.raises(collect.CollectError, match="no such file"):
        collect.from_lms(course, A, tmp_path / "nope.zip")
