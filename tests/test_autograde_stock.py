"""Stock `nbgrader autograde` on simulated a1 submissions gives the exact expected scores."""
import pytest

from grader.demo import simulate
from simulated_class import answers_with, grade_class

ASSIGNMENT, NOTEBOOK = "a1_backprop", "backprop"
MUL_POINTS, APPLE_POINTS, FRUIT_POINTS, TOTAL = 3, 2, 3, 12


@pytest.fixture(scope="module")
def scores(released_course):
    correct = simulate.solution_answers(released_course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    source_mul = answers_with(correct, "mul", "return grad_output * y, grad_output * x",
                              simulate.SOURCE_MUL_BACKWARD)
    return grade_class(released_course, ASSIGNMENT, NOTEBOOK,
                       {"correct": correct, "source_mul": source_mul, "blank": {}})


def test_correct_submission_gets_full_marks(scores):
    assert sum(scores["correct"].values()) == TOTAL


def test_source_mul_loses_mul_and_the_graphs_built_on_it(scores):
    got = scores["source_mul"]
    assert got["test_mul"] == 0 and got["test_apple_shopping"] == 0 and got["test_fruit_shopping"] == 0
    assert sum(got.values()) == TOTAL - MUL_POINTS - APPLE_POINTS - FRUIT_POINTS


def test_blank_scores_zero(scores):
    assert sum(scores["blank"].values()) == 0
