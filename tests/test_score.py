"""Score, feedback and the batch on the in-process runtime: no sandbox, no worker processes.

Two hand-built submissions of a1 (an honest one and one whose ``Mul.backward`` ignores
``grad_output``) are graded through ``batch.grade`` on ``InProcessRuntime``: exact points per
test, the verified score recorded as nbgrader's manual score, and each student recorded and
given feedback as their result comes in, in completion order, before the next is graded.
"""
import nbformat
import pytest
from nbgrader.api import Gradebook

from grader import batch
from grader.course import Course, GradeOptions
from grader.demo import simulate
from grader.runtime.fake import InProcessRuntime

pytestmark = pytest.mark.slow  # two kernels and two verification runs: seconds, not milliseconds

A, NB = "a1_backprop", "backprop"
OPTIONS = GradeOptions(jobs=1, cell_timeout=60, notebook_timeout=300, verify_timeout=60, sandboxed=False)
HONEST = {"test_square": 2, "test_add": 2, "test_mul": 3, "test_apple_shopping": 2, "test_fruit_shopping": 3}


def submit(course, students):
    """Write each student's a1 notebook ({student: answers}) where collect would have."""
    for student, answers in students.items():
        folder = course.submission(student, A)
        folder.mkdir(parents=True)
        nbformat.write(simulate.build_submission(course.release / A / f"{NB}.ipynb", answers), folder / f"{NB}.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, a1_generated):
    course = a1_generated(tmp_path_factory.mktemp("score") / "course")
    correct = simulate.solution_answers(Course().solutions / A / f"{NB}.ipynb")
    wrong = dict(correct, mul=simulate.replace_line(correct["mul"], "return grad_output * y, grad_output * x",
                                                    simulate.SOURCE_MUL_BACKWARD))
    submit(course, {"a_honest": correct, "b_ignores_upstream": wrong})
    runtime = InProcessRuntime(course, OPTIONS, order=["b_ignores_upstream", "a_honest"])
    result = batch.grade(course, A, OPTIONS, runtime=runtime)
    return course, result, runtime


def test_exact_points_for_an_honest_and_a_wrong_submission(graded):
    _, result, _ = graded
    rows = {row["student"]: row for row in result.rows}
    assert {t: rows["a_honest"][t] for t in HONEST} == HONEST
    assert rows["a_honest"]["total"] == 12 and rows["a_honest"]["flags"] == ""
    assert {t: rows["b_ignores_upstream"][t] for t in HONEST} == dict(HONEST, test_mul=0)
    assert rows["b_ignores_upstream"]["total"] == 9 and rows["b_ignores_upstream"]["flags"] == ""
    assert all(row["verified"] == "yes" and row["sandbox"] == "off" for row in rows.values())


def test_the_verified_score_is_recorded_as_the_manual_score(graded):
    course, _, _ = graded
    with Gradebook(course.db_url, course.course_id) as gb:
        grade = gb.find_grade("test_mul", NB, A, "b_ignores_upstream")
        assert (grade.auto_score, grade.manual_score, grade.score) == (0, 0, 0)
        grade = gb.find_grade("test_mul", NB, A, "a_honest")
        assert (grade.auto_score, grade.manual_score, grade.score) == (3, 3, 3)


def test_each_student_is_recorded_and_given_feedback_before_the_next_is_graded(graded):
    course, result, runtime = graded
    assert [(event[0], event[-1]) for event in runtime.events] == [
        ("graded", "b_ignores_upstream"), ("_generate_one", "b_ignores_upstream"),
        ("graded", "a_honest"), ("_generate_one", "a_honest")]
    assert [row["student"] for row in result.rows] == ["a_honest", "b_ignores_upstream"]  # the CSV by name
    for student in ("a_honest", "b_ignores_upstream"):
        assert (course.feedback / student / A / f"{NB}.html").exists()


def test_the_fake_refuses_to_run_student_code_as_if_sandboxed(tmp_path):
    with pytest.raises(ValueError, match="without a sandbox"):
        InProcessRuntime(Course(), GradeOptions())
