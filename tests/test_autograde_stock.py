"""Stock `nbgrader autograde` on simulated submissions gives the exact expected scores."""
import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader import simulate

ASSIGNMENT, NOTEBOOK = "a1_backprop", "backprop"
MUL_POINTS, APPLE_POINTS, FRUIT_POINTS, TOTAL = 3, 2, 3, 12


def submit(course, student, answers):
    folder = course.submitted / student / ASSIGNMENT
    folder.mkdir(parents=True)
    release = course.release / ASSIGNMENT
    for helper in release.glob("*.py"):
        shutil.copy(helper, folder)
    nb = simulate.build_submission(release / f"{NOTEBOOK}.ipynb", answers)
    nbformat.write(nb, folder / f"{NOTEBOOK}.ipynb")


@pytest.fixture(scope="module")
def scores(released_course):
    correct = simulate.solution_answers(released_course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    source_mul = dict(correct, mul=simulate.replace_line(
        correct["mul"], "return grad_output * y, grad_output * x", simulate.SOURCE_MUL_BACKWARD))
    students = {"correct": correct, "source_mul": source_mul, "blank": {}}
    for student, answers in students.items():
        submit(released_course, student, answers)
    released_course.nbgrader("autograde", ASSIGNMENT)
    with Gradebook(released_course.db_url, "backprop") as gb:
        yield {s: {g.name: g.score for g in gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, s).grades}
               for s in students}


def test_correct_submission_gets_full_marks(scores):
    assert sum(scores["correct"].values()) == TOTAL


def test_source_mul_loses_mul_and_the_graphs_built_on_it(scores):
    got = scores["source_mul"]
    assert got["test_mul"] == 0 and got["test_apple_shopping"] == 0 and got["test_fruit_shopping"] == 0
    assert sum(got.values()) == TOTAL - MUL_POINTS - APPLE_POINTS - FRUIT_POINTS


def test_blank_scores_zero(scores):
    assert sum(scores["blank"].values()) == 0
