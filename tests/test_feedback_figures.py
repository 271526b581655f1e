"""The a1 feedback of a correct student, graded in the sandbox: their own graph drawings (PNG,
made inert as every output) and a summary that names the exercises."""
import html
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from grader import batch
from grader.course import GradeOptions
from grader.demo import simulate
from grader.steps import feedback
from notebooks import figures_in

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


def test_the_students_graph_drawings_are_in_the_feedback(feedback_page):
    """As many figures as the executed solution shows (a1's graph drawings, the predictions', the trace)."""
    figures = figures_in(Path(__file__).parents[1] / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    assert figures >= 4
    assert len(PNG.findall(feedback_page)) == figures
    assert "<Figure size" not in feedback_page



def test_the_summary_names_each_exercise_by_its_heading(feedback_page):
    summary = html.unescape(re.sub(r"<[^>]*>", "", feedback_page.split('id="toc"')[1].split("</ol>")[0]))
    assert "Test cell" not in summary
    release = nbformat.read(Path(__file__).parents[1] / "notebooks" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    headings = [line[4:].replace("`", "") for cell in release.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("### 연습 ")]
    assert len(headings) == 5
    for name in headings:
        assert name[:feedback.MAX_NAME] in summary


def test_long_lines_wrap_inside_their_box(feedback_page):
    assert "white-space: pre-wrap" in feedback_page.split("</head>")[0]
