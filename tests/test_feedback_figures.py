"""The a1 feedback of a correct student, graded in the sandbox: their own graph drawings (PNG,
made inert as every output) and a summary that names the exercises."""
import html
import re
import shutil

import nbformat
import pytest

from grader import batch
from grader.course import GradeOptions
from grader.demo import simulate

pytestmark = [pytest.mark.sandbox]

ASSIGNMENT, NOTEBOOK = "a1_backprop", "backprop"
PNG = re.compile(r'<img[^>]*src="data:image/png;base64,')


@pytest.fixture(scope="module")
def feedback_page(a1_generated, tmp_path_factory):
    course = a1_generated(tmp_path_factory.mktemp("figures") / "course")
    folder = course.submission("ada", ASSIGNMENT)
    folder.mkdir(parents=True)
    for helper in (course.release / ASSIGNMENT).glob("*.py"):
        shutil.copy(helper, folder)
    answers = simulate.solution_answers(course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    nbformat.write(simulate.build_submission(course.release / ASSIGNMENT / f"{NOTEBOOK}.ipynb", answers),
                   folder / f"{NOTEBOOK}.ipynb")
    result = batch.grade(course, ASSIGNMENT, GradeOptions(jobs=1, cell_timeout=20, notebook_timeout=120))
    assert [(r["student"], r["total"], r["max"]) for r in result.rows] == [("ada", 12, 12)]
    return (course.feedback / "ada" / ASSIGNMENT / f"{NOTEBOOK}.html").read_text(encoding="utf-8")


def test_the_students_four_graph_drawings_are_in_the_feedback(feedback_page):
    assert len(PNG.findall(feedback_page)) == 4
    assert "<Figure size" not in feedback_page



def test_the_summary_names_each_exercise_by_its_heading(feedback_page):
    summary = html.unescape(re.sub(r"<[^>]*>", "", feedback_page.split('id="toc"')[1].split("</ol>")[0]))
    assert "Test cell" not in summary
    for name in ("연습 1: Square / Exercise 1: Square", "연습 3: Mul / Exercise 3: Mul",
                 "연습 5: 직접 만든 Add와 Mul로 / Exercise 5: with your own Add and Mul"):
        assert name in summary


def test_long_lines_wrap_inside_their_box(feedback_page):
    assert "white-space: pre-wrap" in feedback_page.split("</head>")[0]
