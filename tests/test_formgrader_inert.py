"""Formgrader as the instructor uses it, in Chromium, on submissions whose answers display script
payloads and try to write outside their sandbox.

- Formgrader's page of a submission graded by this grader runs nothing; a control submission
  autograded by stock nbgrader runs its payloads on the same page (the test can see them).
- Formgrader's own buttons run the course's steps (``grader/lab/instructor/nbgrader_config.py``):
  "Autograde" runs the student's code in the grader's sandbox with inert outputs (the control,
  autograded by stock nbgrader from a terminal, writes outside), and "Generate Feedback", per
  student and for the whole assignment, writes pages without the hidden tests (stock
  `generate_feedback` from a terminal writes them: the test can see them).
"""
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from browser_lab import LabServer
from grader import batch
from grader.course import REPO_ROOT, GradeOptions
from grader.demo import simulate
from grader.markers import split_hidden
from inert_payloads import PAYLOAD_HTML

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.sandbox]

A, NB = "a1_backprop", "backprop"
RUN_STATE = ("submitted", "autograded", "feedback", "exchange", "downloaded", "executed", "reports", "work")
# Every link and button the submission's outputs hold (not formgrader's own, which navigate away).
CLICK_OUTPUTS = ("document.querySelectorAll('.output_area a, .output_area button, .output_area summary')"
                 ".forEach(e => e.click())")


def submit(course, student, answers):
    """``student``'s submission: ``answers``, whose Mul cell also tries to leave a file named after
    the student in ``course.outside`` (a host folder, not the sandbox's private /tmp)."""
    answers = dict(answers)
    answers["mul"] += (f"\ntry:\n    open({str(course.outside / student)!r}, 'w').close()\n"
                       "except OSError:\n    pass")
    folder = course.submission(student, A)
    folder.mkdir(parents=True)
    nbformat.write(simulate.build_submission(course.release / A / f"{NB}.ipynb", answers), folder / f"{NB}.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, a1_generated):
    """'scripted' graded by this grader; 'control', the same answers, by stock autograde from a
    terminal; 'clicker', the same answers, submitted and left for formgrader's buttons."""
    course = a1_generated(tmp_path_factory.mktemp("formgrader") / "course")
    course.outside = tmp_path_factory.mktemp("outside-the-sandbox")
    # The toolkit beside the course, as in the repository: formgrader's config imports it from there.
    shutil.copytree(REPO_ROOT / "grader", course.grader, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "node_modules", "gradebook.db*", *RUN_STATE))
    answers = simulate.solution_answers(course.solutions / A / f"{NB}.ipynb")
    answers["mul"] += ("\nfrom IPython.display import HTML, display\n"
                       f"for payload in {PAYLOAD_HTML!r}:\n    display(HTML(payload))")
    submit(course, "scripted", answers)
    batch.grade(course, A, GradeOptions(jobs=1, cell_timeout=30, verify_timeout=60))
    submit(course, "control", answers)
    course.nbgrader("autograde", A, "--student", "control")
    submit(course, "clicker", answers)
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


def hidden_lines(course):
    """Every line of a1's hidden tests long enough to be telling (as the feedback step redacts),
    but for those the solution's visible parts hold too (a reference Function in a hidden test
    shares lines with the student's answer)."""
    nb = nbformat.read(course.solutions / A / f"{NB}.ipynb", as_version=4)
    parts = [split_hidden(cell.source) for cell in nb.cells]  # Markdown: all of it shown
    visible = "\n".join(shown for shown, _ in parts)
    return {line.strip() for _, secret in parts for line in secret.splitlines()
            if len(line.strip()) >= 12 and line.strip() not in visible}


def hidden_lines_in(folder, lines):
    return {line for page in Path(folder).rglob("*.html") for line in lines if line in page.read_text()}


def click_in_row(chromium, server, path, row_text, button):
    """Click ``button`` (a cell class of formgrader's table) in the row naming ``row_text``; the
    text of the modal formgrader opens when the server answers."""
    page = chromium.new_page()
    page.goto(server.url(f"/formgrader?token={server.token}"), wait_until="load")
    page.goto(server.url(path), wait_until="load")
    page.locator("tr", has_text=row_text).locator(f"td.{button} a").first.click()
    modal = page.locator("#success-modal, #error-modal")
    modal.first.wait_for(timeout=240_000)
    text = modal.first.inner_text()
    page.close()
    return text


def test_formgraders_autograde_button_runs_the_student_in_the_sandbox(chromium, formgrader, graded):
    assert (graded.outside / "control").exists()  # stock autograde from a terminal: no sandbox
    said = click_in_row(chromium, formgrader, f"/formgrader/manage_submissions/{A}", "clicker", "autograde")
    assert "Successfully autograded" in said, said
    assert not (graded.outside / "clicker").exists()
    assert what_ran(chromium, formgrader, graded, "clicker") == \
        {"console": [], "dialogs": [], "pwned": False, "moved": False}


def test_formgraders_feedback_buttons_never_write_the_hidden_tests(chromium, formgrader, graded):
    lines = hidden_lines(graded)
    control = graded.nbgrader("generate_feedback", A, "--student", "control", "--force")
    assert control.returncode == 0 and hidden_lines_in(graded.feedback / "control", lines)  # stock leaks
    said = click_in_row(chromium, formgrader, f"/formgrader/manage_submissions/{A}", "scripted",
                        "generate-feedback")
    assert "Successfully generated feedback" in said, said
    said = click_in_row(chromium, formgrader, "/formgrader/manage_assignments", A, "generate-feedback")
    assert "Successfully generated feedback" in said, said
    written = {page.parent.parent.name for page in graded.feedback.rglob("*.html")}
    assert {"scripted", "control"} <= written
    for student in written - {"control"}:
        assert hidden_lines_in(graded.feedback / student, lines) == set(), student
