"""Students in JupyterLab, in a real browser: fetch, answer, run, validate, submit; then grading.

One JupyterLab server per student (as on a hub: nbgrader takes the student's name from the
server's configuration, not from the browser), both started at once with the student
configuration of grader/lab/, each on an empty workspace, on a temp copy of the course. The instructor releases, collects and autogrades with stock
nbgrader commands in the same copy. Screenshots: test-artifacts/browser/.
"""
import re
import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook
from traitlets.config.loader import PyFileConfigLoader

from browser_lab import LabPage, LabServer
from grader.demo import simulate
from grader.course import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.sandbox]

ASSIGNMENT, NOTEBOOK = "a1_backprop", "backprop"
TOTAL, MUL_POINTS, APPLE_POINTS = 12, 3, 2
STUDENTS = ("alice", "bob")  # two names for one OS user: the exchange must tell them apart
SHOTS = REPO_ROOT / "test-artifacts" / "browser"
PROGRESS = "report_progress("  # the notebook's last cell: one PASS/FAIL line per exercise
COURSE_ENV = ("COURSE_EXCHANGE", "COURSE_ID", "COURSE_STUDENT_ID", "JUPYTER_CONFIG_PATH")


@pytest.fixture(scope="module")
def shots():
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    return SHOTS


@pytest.fixture(scope="module")
def course(tmp_path_factory, a1_generated):
    """A temp course of its own (its gradebook and exchange are this module's alone), with the
    lab configuration, the assignment generated and released to the exchange."""
    with pytest.MonkeyPatch.context() as env:
        for name in COURSE_ENV:  # the defaults: the exchange is grader/exchange of this course
            env.delenv(name, raising=False)
        course = a1_generated(tmp_path_factory.mktemp("lab-course") / "course")
        shutil.copytree(REPO_ROOT / "grader" / "lab", course.grader / "lab",
                        ignore=shutil.ignore_patterns("__pycache__"))
        course.nbgrader("release_assignment", ASSIGNMENT)
        yield course


@pytest.fixture(scope="module")
def labs(course, tmp_path_factory):
    """A student JupyterLab per student, each on its own empty workspace, and the instructor's
    on the course; all started at once."""
    servers = {}
    try:
        for student in STUDENTS:
            home = tmp_path_factory.mktemp(student)
            (home / "work").mkdir()
            servers[student] = LabServer("student", course.root, home / "work", home, student_id=student)
        servers["instructor"] = LabServer("instructor", course.root, course.root,
                                          tmp_path_factory.mktemp("instructor"))
        yield {name: server.wait_ready() for name, server in servers.items()}
    finally:
        LabServer.stop_all(servers.values())


@pytest.fixture
def context(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    yield context
    context.close()


def answer_cells(notebook_path):
    """grade_id -> index of each answer cell in the student's copy of the notebook."""
    nb = nbformat.read(notebook_path, as_version=4)
    return {cell.metadata.nbgrader["grade_id"]: i for i, cell in enumerate(nb.cells)
            if cell.metadata.get("nbgrader", {}).get("solution")}


def progress_cell(notebook_path):
    """Index of the notebook's own "check my progress" cell (not graded)."""
    nb = nbformat.read(notebook_path, as_version=4)
    found = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and PROGRESS in cell.source]
    assert found, f"no cell calling {PROGRESS} in {notebook_path.name}: the student's own check is gone"
    return found[-1]


def work_through(page, workspace, answers):
    """A student's session: fetch, type the answers, save, run all; returns the errors shown."""
    page.open_lab()
    page.screenshot("lab")
    page.open_assignment_list()
    page.screenshot("assignment-list")
    page.fetch(ASSIGNMENT)
    page.screenshot("fetched")
    page.open_fetched_notebook(ASSIGNMENT, NOTEBOOK)
    page.screenshot("notebook")
    notebook_path = workspace / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    cells = answer_cells(notebook_path)
    assert set(answers) <= set(cells), f"answer cells in the release: {sorted(cells)}"
    for grade_id, source in answers.items():
        page.type_into_cell(cells[grade_id], source)
    page.save()
    page.screenshot("answered")
    saved = nbformat.read(notebook_path, as_version=4)
    assert {g: saved.cells[i].source for g, i in cells.items() if g in answers} == answers
    page.run_all()
    page.screenshot("ran-all")
    return page.error_outputs()


def scores(course, student):
    with Gradebook(course.db_url, "backprop") as gb:
        return {g.name: g.score for g in gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student).grades}


def test_students_submit_from_jupyterlab_and_the_instructor_grades_them(chromium, course, labs, context, shots):
    correct = simulate.solution_answers(course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    source_mul = dict(correct, mul=simulate.replace_line(
        correct["mul"], "return grad_output * y, grad_output * x", simulate.SOURCE_MUL_BACKWARD))
    alice, bob = STUDENTS

    # A student with the right answers: the visible checks pass, Validate says so, she submits.
    page = LabPage(context, labs[alice], shots, alice)
    assert work_through(page, labs[alice].root, correct) == []
    progress = page.cell_output(progress_cell(labs[alice].root / ASSIGNMENT / f"{NOTEBOOK}.ipynb"))
    assert "PASS" in progress and "FAIL" not in progress, progress
    result, text = page.validate()
    page.screenshot("validated")
    assert result == "validation-success", text
    assert "Success! Your notebook passes all the tests." in text
    page.close_dialog()
    submitted = page.submit(ASSIGNMENT)
    page.screenshot("submitted")
    assert len(submitted) == 1 and ASSIGNMENT in submitted[0], submitted
    page.assert_no_js_errors()

    # A student with the source notebook's Mul (`return y, x`): as in the source notebook, every
    # visible check passes (they use an all-ones upstream gradient); the progress cell does not.
    page = LabPage(context, labs[bob], shots, bob)
    assert work_through(page, labs[bob].root, source_mul) == []
    progress = page.cell_output(progress_cell(labs[bob].root / ASSIGNMENT / f"{NOTEBOOK}.ipynb"))
    page.screenshot("progress")
    assert re.search(r"PASS.*Square", progress) and re.search(r"FAIL.*Mul", progress), progress
    result, text = page.validate()
    page.screenshot("validated")
    assert result == "validation-success", text
    page.close_dialog()
    submitted = page.submit(ASSIGNMENT)
    page.screenshot("submitted")
    assert len(submitted) == 1, f"{bob} sees only his own submission: {submitted}"
    page.assert_no_js_errors()

    # The instructor, as another identity on the same machine: collect from the exchange, grade.
    inbound = sorted(p.name.split("+")[0] for p in (course.exchange / "backprop" / "inbound").iterdir())
    assert inbound == sorted(STUDENTS)
    course.nbgrader("collect", ASSIGNMENT)
    for student in STUDENTS:
        assert (course.submitted / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb").exists()
    course.nbgrader("autograde", ASSIGNMENT)
    assert sum(scores(course, alice).values()) == TOTAL
    got = scores(course, bob)
    assert got["test_mul"] == 0 and got["test_apple_shopping"] == APPLE_POINTS, got  # no double penalty
    assert sum(got.values()) == TOTAL - MUL_POINTS


def test_student_lab_has_no_formgrader_or_create_assignment(chromium, labs, context, shots):
    page = LabPage(context, labs[STUDENTS[0]], shots, "formgrader-hidden")
    page.open_lab()
    items = page.menu("Nbgrader")
    page.screenshot("nbgrader-menu")
    assert "Assignment List" in items
    assert not {"Formgrader", "Formgrader (local)", "Create assignment", "Course List"} & set(items), items
    page.page.keyboard.press("Escape")
    assert page.page.locator("#nbgrader-create_assignemnt").count() == 0  # nbgrader's spelling

    page.expected_404.add("/formgrader")
    response = page.page.goto(page.server.url("/formgrader"))
    page.screenshot("formgrader-url")
    assert response.status == 404
    assert "formgrader" not in page.page.title().lower()
    page.assert_no_js_errors()


def test_instructor_lab_serves_formgrader(labs):
    server = labs["instructor"]
    status, body = server.get("/formgrader")
    assert status == 200 and "formgrader" in body.lower(), body[:500]
    status, body = labs[STUDENTS[0]].get("/formgrader")
    assert status == 404


def load_nbgrader_config(path):
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def test_exchange_root_defaults_to_the_course_and_moves_to_a_server(monkeypatch):
    student_config = REPO_ROOT / "grader" / "lab" / "student" / "nbgrader_config.py"
    for name in COURSE_ENV:
        monkeypatch.delenv(name, raising=False)
    for path in (REPO_ROOT / "nbgrader_config.py", student_config):
        assert load_nbgrader_config(path).Exchange.root == str(REPO_ROOT / "grader" / "exchange")
    assert "student_id" not in load_nbgrader_config(student_config).CourseDirectory  # OS user

    monkeypatch.setenv("COURSE_EXCHANGE", "/srv/nbgrader/exchange")
    monkeypatch.setenv("COURSE_STUDENT_ID", "alice")
    for path in (REPO_ROOT / "nbgrader_config.py", student_config):
        assert load_nbgrader_config(path).Exchange.root == "/srv/nbgrader/exchange"
    assert load_nbgrader_config(student_config).CourseDirectory.student_id == "alice"
