"""Assignment 3 (two-layer net): stock autograde scores simulated students exactly and names their mistakes."""
import pytest

from grader.demo import simulate
from simulated_class import answers_with, grade_class, messages

pytestmark = pytest.mark.slow

ASSIGNMENT, NOTEBOOK = "a3_two_layer_net", "two_layer_net"
POINTS = {"test_layers": 2, "test_two_layer_net": 3, "test_numerical_gradient": 2, "test_accuracy": 2}


@pytest.fixture(scope="module")
def graded(released_course):
    correct = simulate.solution_answers(released_course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    students = {
        "correct": correct,
        "blank": {},
        # torch.zeros(x.shape) is float32: a numerical gradient that loses precision
        "float32_numerical": answers_with(correct, "numerical_gradient", "grad = torch.zeros_like(x)",
                                          "grad = torch.zeros(x.shape)"),
        # a net that trains well but is built from torch's ops, not the student's Functions
        "torch_ops_net": answers_with(correct, "two_layer_net",
                                      'hidden = ReLU.apply(Affine.apply(x, p["W1"], p["b1"]))',
                                      'hidden = torch.relu(x @ p["W1"] + p["b1"])'),
    }
    return released_course, grade_class(released_course, ASSIGNMENT, NOTEBOOK, students)


def test_correct_gets_full_marks_and_blank_gets_zero(graded):
    _, scores = graded
    assert scores["correct"] == POINTS
    assert sum(scores["blank"].values()) == 0


def test_float32_numerical_gradient_loses_only_that_exercise(graded):
    course, scores = graded
    assert scores["float32_numerical"] == dict(POINTS, test_numerical_gradient=0)
    assert "float32, use torch.zeros_like(x)" in messages(course, ASSIGNMENT, NOTEBOOK, "float32_numerical")["test_numerical_gradient"]


def test_net_not_built_from_the_students_functions_loses_the_net_exercise(graded):
    course, scores = graded
    assert scores["torch_ops_net"] == dict(POINTS, test_two_layer_net=0)
    assert "your layers' .apply" in messages(course, ASSIGNMENT, NOTEBOOK, "torch_ops_net")["test_two_layer_net"]
