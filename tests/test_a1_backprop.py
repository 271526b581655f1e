"""Stock `nbgrader autograde` on simulated a1 submissions gives the exact expected scores.

No double penalty: the graph exercises are graded with reference Mul and Add nodes swapped in, so
a wrong Mul or Add costs only its own exercise.
"""
import nbformat
import pytest

from grader.demo import simulate
from simulated_class import answers_with, grade_class, messages

pytestmark = pytest.mark.slow

ASSIGNMENT, NOTEBOOK = "a1_backprop", "backprop"
POINTS = {"test_square": 2, "test_add": 2, "test_mul": 3, "test_apple_shopping": 2, "test_fruit_shopping": 3}
RIGHT_MUL = "return grad_output * y, grad_output * x"


@pytest.fixture(scope="module")
def graded(released_course):
    correct = simulate.solution_answers(released_course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    students = {
        "correct": correct,
        "blank": {},
        "source_mul": answers_with(correct, "mul", RIGHT_MUL, simulate.SOURCE_MUL_BACKWARD),
        "blank_mul": answers_with(correct, "mul", RIGHT_MUL, "raise NotImplementedError()"),
        "wrong_add": answers_with(correct, "add", "return grad_output, grad_output", "return grad_output, -grad_output"),
        # the apple graph from torch's * instead of Mul.apply
        "apple_torch_ops": answers_with(correct, "apple_shopping", "price = Mul.apply(apple, num)", "price = apple * num"),
    }
    return released_course, grade_class(released_course, ASSIGNMENT, NOTEBOOK, students)


def test_correct_gets_full_marks_and_blank_gets_zero(graded):
    _, scores = graded
    assert scores["correct"] == POINTS
    assert sum(scores["blank"].values()) == 0


@pytest.mark.parametrize("student, lost", [
    ("source_mul", "test_mul"), ("blank_mul", "test_mul"), ("wrong_add", "test_add"),
    ("apple_torch_ops", "test_apple_shopping"),
])
def test_each_mistake_loses_only_its_own_exercise(graded, student, lost):
    _, scores = graded
    assert scores[student] == dict(POINTS, **{lost: 0})


def test_source_mul_scores_9_of_12_and_still_sees_its_wrong_gradients(graded):
    course, scores = graded
    assert sum(scores["source_mul"].values()) == 9
    nb = nbformat.read(course.autograded / "source_mul" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    apple_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_apple_shopping")
    shown = "".join(out.get("text", "") for out in apple_cell.outputs)
    assert "apple.grad =     2.0000   책 / book: 2.2      ✗" in shown
    assert "only that exercise loses points" in shown and "visible check passed" in shown


def test_graph_not_built_from_mul_apply_is_named(graded):
    course, _ = graded
    message = messages(course, ASSIGNMENT, NOTEBOOK, "apple_torch_ops")["test_apple_shopping"]
    assert "price 노드는 Mul.apply로 만드세요" in message and "build the price node with Mul.apply" in message
