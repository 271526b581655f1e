"""Assignment 2 (layers): stock autograde scores simulated students exactly and names their mistakes."""
import pytest

from grader.demo import simulate
from simulated_class import answers_with, grade_class, messages

pytestmark = pytest.mark.slow

ASSIGNMENT, NOTEBOOK = "a2_layers", "layers"
POINTS = {"test_relu": 2, "test_sigmoid": 2, "test_affine": 3, "test_softmax_with_loss": 3}


@pytest.fixture(scope="module")
def graded(released_course):
    correct = simulate.solution_answers(released_course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    students = {
        "correct": correct,
        "blank": {},
        # the book's ReLU: dout[mask] = 0, in place
        "book_relu": answers_with(correct, "relu", "return grad_output.masked_fill(mask, 0)",
                                  "grad_output[mask] = 0; return grad_output"),
        # the bias gradient left per row: the engine would sum it, the checks do not
        "bias_not_summed": answers_with(correct, "affine", "db = grad_output.sum(dim=0)", "db = grad_output"),
        # the book's SoftmaxWithLoss.backward(dout=1): dout never used
        "book_softmax": answers_with(correct, "softmax_with_loss", "dx = grad_output * (y - t) / y.shape[0]",
                                     "dx = (y - t) / y.shape[0]"),
        # one gradient for two inputs
        "one_gradient": answers_with(correct, "softmax_with_loss", "return dx, None", "return dx"),
    }
    scores = grade_class(released_course, ASSIGNMENT, NOTEBOOK, students)
    return released_course, scores


def lost(scores, student):
    return {name for name, score in scores[student].items() if score < POINTS[name]}


def test_correct_gets_full_marks_and_blank_gets_zero(graded):
    _, scores = graded
    assert scores["correct"] == POINTS
    assert sum(scores["blank"].values()) == 0


@pytest.mark.parametrize("student, test, words", [
    ("book_relu", "test_relu", ["제자리", "in place"]),
    ("bias_not_summed", "test_affine", ["배치에 대해 합하", "sum over the batch"]),  # the visible check says it
    ("book_softmax", "test_softmax_with_loss", ["grad_output을 무시", "ignores grad_output", "(y - t) / N"]),
    ("one_gradient", "test_softmax_with_loss", ["2개를 반환합니다", "one gradient per input"]),
])
def test_each_mistake_loses_only_its_exercise_and_is_named(graded, student, test, words):
    course, scores = graded
    assert lost(scores, student) == {test}
    message = messages(course, ASSIGNMENT, NOTEBOOK, student)[test]
    for word in words:
        assert word in message, message
