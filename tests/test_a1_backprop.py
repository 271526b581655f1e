"""Stock `nbgrader autograde` on simulated a1 submissions gives the exact expected scores, and the
grader's own check (the verifier) agrees.

No double penalty: the graph exercises are graded with the student's Mul and Add computing as
reference nodes (swapped by object, so an alias such as ``mul = Mul.apply`` grades as the name
does), so a wrong Mul or Add costs only its own exercise.
"""
import nbformat
import pytest

from grader.course import Course
from grader.demo import simulate
from grader.steps import verify
from simulated_class import answers_with, grade_class, messages

pytestmark = pytest.mark.slow

ASSIGNMENT, NOTEBOOK = "a1_backprop", "backprop"
POINTS = {"test_square": 2, "test_add": 2, "test_mul": 3, "test_apple_shopping": 2, "test_fruit_shopping": 3}
RIGHT_MUL = "return grad_output * y, grad_output * x"
# correct variants of the apple graph that never look the name Mul up while it is graded
APPLE_BY_ALIAS = ("mul = Mul.apply  # 별칭 / an alias\n\n\n"
                  "def apple_shopping(apple, num, ctax):\n"
                  "    price = mul(apple, num)\n"
                  "    return price, mul(price, ctax)\n")
APPLE_BY_DEFAULT = ("def apple_shopping(apple, num, ctax, times=Mul.apply):\n"
                    "    price = times(apple, num)\n"
                    "    return price, times(price, ctax)\n")
# a graph whose forward values are right but whose gradient never reaches apple and num
APPLE_DETACHED = ("def apple_shopping(apple, num, ctax):\n"
                  "    price = Mul.apply(apple, num)\n"
                  "    return price, Mul.apply(price.detach(), ctax)\n")


def student_answers(correct):
    """{student: answers}: the class both the notebook's tests and the verifier grade."""
    return {
        "correct": correct,
        "blank": {},
        "source_mul": answers_with(correct, "mul", RIGHT_MUL, simulate.SOURCE_MUL_BACKWARD),
        "blank_mul": answers_with(correct, "mul", RIGHT_MUL, "raise NotImplementedError()"),
        "wrong_add": answers_with(correct, "add", "return grad_output, grad_output", "return grad_output, -grad_output"),
        # the apple graph from torch's * instead of Mul.apply
        "apple_torch_ops": answers_with(correct, "apple_shopping", "price = Mul.apply(apple, num)", "price = apple * num"),
        "alias_source_mul": dict(answers_with(correct, "mul", RIGHT_MUL, simulate.SOURCE_MUL_BACKWARD),
                                 apple_shopping=APPLE_BY_ALIAS),
        "default_argument": dict(correct, apple_shopping=APPLE_BY_DEFAULT),
        "apple_detached": dict(correct, apple_shopping=APPLE_DETACHED),
    }


LOST = {"source_mul": "test_mul", "blank_mul": "test_mul", "wrong_add": "test_add",
        "apple_torch_ops": "test_apple_shopping", "alias_source_mul": "test_mul",
        "default_argument": None, "apple_detached": "test_apple_shopping"}


@pytest.fixture(scope="module")
def graded(released_course):
    correct = simulate.solution_answers(released_course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    students = student_answers(correct)
    return released_course, grade_class(released_course, ASSIGNMENT, NOTEBOOK, students)


def test_correct_gets_full_marks_and_blank_gets_zero(graded):
    _, scores = graded
    assert scores["correct"] == POINTS
    assert sum(scores["blank"].values()) == 0


@pytest.mark.parametrize("student, lost", sorted(LOST.items()))
def test_each_mistake_loses_only_its_own_exercise(graded, student, lost):
    _, scores = graded
    assert scores[student] == (dict(POINTS, **{lost: 0}) if lost else POINTS)


@pytest.mark.sandbox
@pytest.mark.parametrize("student, lost", sorted(LOST.items()))
def test_the_graders_check_agrees_with_the_notebooks_tests(tmp_path, student, lost):
    """The same class through the verifier: the same exercise lost, the others verified."""
    course = Course()
    correct = simulate.solution_answers(course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    path = tmp_path / f"{NOTEBOOK}.ipynb"
    nbformat.write(simulate.build_submission(course.release / ASSIGNMENT / f"{NOTEBOOK}.ipynb",
                                             student_answers(correct)[student]), path)
    found = verify.verify_notebook(verify.spec_for(ASSIGNMENT), path, seed=11, timeout=60,
                                   helpers=course.release / ASSIGNMENT)
    assert {grade_id for grade_id, verdict in found.items() if not verdict.passed} == ({lost} if lost else set())


def test_graph_exercises_come_after_every_function_exercise():
    """The verifier's reference swap stays for the rest of its run (specs/a1_backprop.py): so the
    graph exercises must be the last graded cells in the notebook's order."""
    nb = nbformat.read(Course().solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    graded = [c.metadata.nbgrader["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded[-2:] == ["test_apple_shopping", "test_fruit_shopping"]


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
    assert "price 노드는 여러분의 Mul 노드(Mul.apply)로 만드세요" in message
    assert "build the price node with your Mul node (Mul.apply)" in message
