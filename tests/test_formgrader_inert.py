"""Formgrader's page of a submission whose outputs are script payloads, opened by the instructor in
Chromium: nothing runs. A control submission autograded by stock nbgrader (no inert outputs)
runs its payloads on the same page, which shows the test can see them.
"""
import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook

from browser_lab import LabServer
from grader import batch
from grader.course import REPO_ROOT, GradeOptions
from grader.demo import simulate
from inert_payloads import PAYLOAD_HTML

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.sandbox]

A, NB = "a1_backprop", "backprop"
# Every link and button the submission's outputs hold (not formgrader's own, which navigate away).
CLICK_OUTPUTS = ("document.querySelectorAll('.output_area a, .output_area button, .output_area summary')"
                 ".forEach(e => e.click())")


def submit(course, student, answers):
    folder = course.submission(student, A)
    folder.mkdir(parents=True)
    nbformat.write(simulate.build_submission(course.release / A / f"{NB}.ipynb", answers), folder / f"{NB}.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, a1_generated):
    """'scripted' graded by this grader; then 'control', the same answers, by stock autograde."""
    course = a1_generated(tmp_path_factory.mktemp("formgrader") / "course")
    shutil.copytree(REPO_ROOT / "grader" / "lab", course.grader / "lab", ignore=shutil.ignore_patterns("__pycache__"))
    answers = simulate.solution_answers(course.solutions / A / f"{NB}.ipynb")
    answers["mul"] += ("\nfrom IPython.display import HTML, display\n"
                       f"for payload in {PAYLOAD_HTML!r}:\n    display(HTML(payload))")
    submit(course, "scripted", answers)
    batch.grade(course, A, GradeOptions(jobs=1, cell_timeout=30, verify_timeout=60))
    submit(course, "control", answers)
    course.nbgrader("autograde", A, "--student", "control")
    return course


@pytest.fixture(scope="module")
def formgrader(graded, tmp_path_factory):
    server = LabServer("instructor", graded.root, graded.root, tmp_path_factory.mktemp("instructor"))
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def what_ran(chromium, server, course, student):
    """Open formgrader's page of ``student``'s notebook as the instructor; what the payloads did."""
    with Gradebook(course.db_url, course.course_id) as gb:
        notebook_id = gb.find_submission_notebook(NB, A, student).id
    page = chromium.new_page()
    seen = {"console": [], "dialogs": []}
    page.on("console", lambda message: seen["console"].append(message.text))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.goto(server.url(f"/formgrader?token={server.token}"), wait_until="load")
    page.goto(server.url(f"/formgrader/submissions/{notebook_id}/?index=0"), wait_until="load")
    page.get_by_text("Mul").first.wait_for()
    page.wait_for_timeout(1000)
    url = page.url
    page.evaluate(CLICK_OUTPUTS)
    page.wait_for_timeout(1000)
    seen["pwned"] = page.evaluate("window.pwned !== undefined") or page.title() == "pwned"
    seen["moved"] = page.url != url
    page.close()
    seen["console"] = [text for text in seen["console"] if "pwned" in text]
    return seen


def test_the_control_page_runs_its_payloads(chromium, formgrader, graded):
    seen = what_ran(chromium, formgrader, graded, "control")
    assert seen["pwned"] or seen["console"] or seen["dialogs"], seen


def test_nothing_runs_on_formgraders_page_of_a_graded_submission(chromium, formgrader, graded):
    assert what_ran(chromium, formgrader, graded, "scripted") == \
        {"console": [], "dialogs": [], "pwned": False, "moved": False}
