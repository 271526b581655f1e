"""A class on JupyterHub, in a real browser, from login to feedback (as root: real OS users).

`python -m grader.hub up` (what `make hub` runs) on temporary folders: three students and an
instructor as OS users, each student's server as the student, PostgreSQL for the gradebook.
Through the hub's own login page the students fetch a1_backprop and answer it: one right, one
with the source notebook's `Mul.backward` (`return y, x`), one who submits that too, is graded,
then fixes it and submits again. The instructor opens formgrader; the grading runs through the
instructor's CLI (collect from the exchange, `python -m grader grade` with the sandbox, against
PostgreSQL), then nbgrader's release_feedback; each student fetches their feedback in the
Assignment List and sees their own score. A student opening another student's server or
formgrader is refused. Screenshots: test-artifacts/hub/. Any JavaScript error fails the test.
"""
import csv
import os
import re
import shutil

import pytest
from nbgrader.api import Gradebook

from browser_hub import HubClass, HubPage
from grader.demo import simulate
from grader.course import REPO_ROOT
from grader.hub import accounts
from notebooks import figures_in
from test_browser import answer_cells, work_through

ASSIGNMENT, NOTEBOOK, TOTAL = "a1_backprop", "backprop", 12
RIGHT, MUL_BUG, RESUBMITS, INSTRUCTOR = "bphubalice", "bphubbob", "bphubcarol", "bphubteacher"
NEWCOMER, ASSISTANT = "bphubdana", "bphubta"  # added while the class runs
STUDENTS = {RIGHT: "Alice Kim", MUL_BUG: "Bob Lee", RESUBMITS: "Carol Park"}
SHOTS = REPO_ROOT / "test-artifacts" / "hub"

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.skipif(os.geteuid() != 0, reason=(
    "the hub test creates OS users (useradd) and runs each student's server as that user: "
    "it needs root (CI runs as root; locally: sudo make test)"))]


@pytest.fixture(scope="module")
def hub():
    proxy = REPO_ROOT / "grader" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
    if not proxy.exists():
        pytest.fail(f"{proxy} missing: `make test` installs it with npm (`make hub-proxy`; "
                    "npm comes from `make system-packages`)")
    for user in [*STUDENTS, INSTRUCTOR, NEWCOMER, ASSISTANT]:  # left behind by a killed run
        accounts.remove_user(user)
    hub = HubClass(STUDENTS, INSTRUCTOR)
    try:
        yield hub.wait_ready()
    finally:
        hub.stop()
        shutil.copy(hub.log_path, SHOTS / "hub.log") if SHOTS.exists() else None
        hub.remove()


@pytest.fixture(scope="module")
def shots():
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    return SHOTS


def answers():
    correct = simulate.solution_answers(REPO_ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    source_mul = dict(correct, mul=simulate.replace_line(
        correct["mul"], "return grad_output * y, grad_output * x", simulate.SOURCE_MUL_BACKWARD))
    return correct, source_mul


def grade(hub, step):
    """The instructor's round: collect from the exchange, grade (sandbox, PostgreSQL); grades.csv."""
    collected = hub.instructor_command("python", "-m", "grader", "collect", ASSIGNMENT, "--exchange")
    assert collected.returncode == 0, collected.stderr[-3000:]
    graded = hub.instructor_command("python", "-m", "grader", "grade", ASSIGNMENT, "--jobs", "2")
    (SHOTS / f"grade-{step}.log").write_text(graded.stdout + graded.stderr)
    assert graded.returncode == 0, graded.stderr[-3000:]
    with open(hub.course_dir / "grader" / "reports" / ASSIGNMENT / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert all(row["sandbox"] == "on" for row in rows.values()), rows
    return rows


def grade_by_hand(hub, student, cell, score):
    """What formgrader's grade handler does when the instructor saves a score."""
    with Gradebook(hub.settings["COURSE_DB_URL"], hub.course_id) as gb:
        grade = gb.find_grade(cell, NOTEBOOK, ASSIGNMENT, student)
        grade.manual_score, grade.extra_credit, grade.needs_manual_grade = score, None, False
        gb.db.commit()


def secrets_missing(hub):
    """Copy submission_secret.txt of each student's latest submission in inbound into their
    feedback folder (a workaround, see the test)."""
    inbound = hub.exchange / hub.course_id / "inbound"
    for student in STUDENTS:
        latest = sorted(inbound.glob(f"{student}+{ASSIGNMENT}+*"),
                        key=lambda p: (p / "timestamp.txt").read_text())[-1]
        shutil.copy(latest / "submission_secret.txt",
                    hub.course_dir / "grader" / "feedback" / student / ASSIGNMENT)


def feedback_score(page, hub, student):
    """Fetch Feedback in the Assignment List, open the fetched feedback page; its score."""
    page.open_lab()
    page.open_assignment_list()
    page.fetch_feedback(ASSIGNMENT)
    page.screenshot("feedback-fetched")
    found = sorted((hub.home(student) / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK}.html"))
    assert found, f"no feedback fetched into {student}'s home"
    relative = found[-1].relative_to(hub.home(student))
    page.page.goto(page.server.url(f"/files/{relative}"))
    page.screenshot("feedback")
    text = page.page.locator("body").inner_text()
    assert "BEGIN HIDDEN TESTS" not in text, "the hidden tests' source is in the feedback"
    match = re.search(r"Score: ([\d.]+) / ([\d.]+)", text)
    assert match, text[:2000]
    assert float(match.group(2)) == TOTAL
    return float(match.group(1))


def test_a_class_on_the_hub(chromium, hub, shots):
    correct, source_mul = answers()
    contexts = {}

    def page_of(user):
        if user not in contexts:
            contexts[user] = chromium.new_context(viewport={"width": 1400, "height": 900})
        page = HubPage(contexts[user], hub, shots, user)
        return page

    try:
        pages = {}
        # Three students log in through the hub's login page, fetch, answer, submit.
        for student, given in ((RIGHT, correct), (MUL_BUG, source_mul), (RESUBMITS, source_mul)):
            page = pages[student] = page_of(student)
            page.login()
            # the source notebook's Mul passes every visible check, as it did in the source
            assert work_through(page, hub.home(student), given) == []
            submitted = page.submit(ASSIGNMENT)
            page.screenshot("submitted")
            assert len(submitted) == 1, submitted

        # The instructor logs in and opens formgrader (the hub service of the course).
        teacher = page_of(INSTRUCTOR)
        teacher.login()
        teacher.page.goto(f"{hub.url}/services/{hub.course_id}/formgrader")
        teacher.page.get_by_text(ASSIGNMENT).first.wait_for()
        teacher.screenshot("formgrader")

        first = grade(hub, 1)
        assert float(first[RIGHT]["total"]) == TOTAL
        assert float(first[RESUBMITS]["total"]) < TOTAL, first[RESUBMITS]
        # The instructor gives bob half of Mul's 3 points by hand: the next grading keeps it.
        assert (float(first[MUL_BUG]["total"]), float(first[MUL_BUG]["test_mul"])) == (9, 0)
        grade_by_hand(hub, MUL_BUG, "test_mul", 1.5)

        # The resubmitter fixes Mul and submits again; the instructor collects and grades again.
        page = pages[RESUBMITS]
        page.open_lab()
        page.open_assignment_list()
        page.open_fetched_notebook(ASSIGNMENT, NOTEBOOK)
        cells = answer_cells(hub.home(RESUBMITS) / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
        page.type_into_cell(cells["mul"], correct["mul"])
        page.save()
        page.run_all()
        assert page.error_outputs() == []
        page.screenshot("fixed")
        submitted = page.submit(ASSIGNMENT)
        page.screenshot("resubmitted")
        assert len(submitted) == 2, submitted

        second = grade(hub, 2)
        mul_bug_total = float(second[MUL_BUG]["total"])
        assert (mul_bug_total, float(second[MUL_BUG]["test_mul"])) == (10.5, 1.5), second[MUL_BUG]
        # A pipeline failure here is recorded, and the test goes on to check the rest of the loop.
        wrong = []
        if float(second[RESUBMITS]["total"]) != TOTAL:
            wrong.append(f"the resubmission was not graded (grades.csv): {second[RESUBMITS]}")

        released = hub.instructor_command("nbgrader", "release_feedback", ASSIGNMENT)
        if released.returncode != 0:
            wrong.append("nbgrader release_feedback failed:\n" + released.stderr[-1500:])
            # Only so that the rest of the loop is checked: give each feedback folder the secret
            # of the student's latest submission (what nbgrader's own autograde would have kept).
            secrets_missing(hub)
            released = hub.instructor_command("nbgrader", "release_feedback", ASSIGNMENT)
        assert released.returncode == 0, released.stderr[-3000:]

        # Each student fetches feedback and sees their own score.
        expected = {RIGHT: TOTAL, MUL_BUG: mul_bug_total, RESUBMITS: TOTAL}
        seen = {student: feedback_score(pages[student], hub, student) for student in STUDENTS}
        # alice's feedback: her graph drawings (as many as the solution shows), and the summary
        # names the exercises
        right = pages[RIGHT].page
        assert right.locator("img[src^='data:image/png']").count() == \
            figures_in(REPO_ROOT / "solutions" / ASSIGNMENT / "backprop.ipynb")
        summary = right.locator("#toc").inner_text()
        assert "Exercise 3: Mul" in summary and "Test cell" not in summary, summary
        assert {s: seen[s] for s in (RIGHT, MUL_BUG)} == {s: expected[s] for s in (RIGHT, MUL_BUG)}
        if seen[RESUBMITS] != TOTAL:
            wrong.append(f"{RESUBMITS}'s feedback shows {seen[RESUBMITS]}, not the new {TOTAL}")

        # A student opening another student's server, or formgrader, is refused by the hub.
        intruder = pages[RIGHT]
        intruder.expected_404.update({f"/user/{MUL_BUG}/", "/services/", "/hub/api/oauth2/authorize",
                                      f"/user/{RIGHT}/formgrader"})
        status = intruder.open_refused(f"{hub.url}/user/{MUL_BUG}/lab")
        intruder.screenshot("other-students-server")
        assert status in (403, 404), status
        assert MUL_BUG not in intruder.page.title()
        status = intruder.open_refused(f"{hub.url}/services/{hub.course_id}/formgrader")
        intruder.screenshot("formgrader-refused")
        assert status in (403, 404), status
        status = intruder.open_refused(intruder.server.url("/formgrader"))  # not in her own server
        assert status == 404, status

        # The roster while the class runs, one command each, no restart: a student is added, a
        # password reset, a teaching assistant added, a student dropped; alice's kernel lives on.
        kernels = pages[RIGHT].kernel_ids()
        assert kernels, "alice should still have the kernel she worked in"
        first_password = hub.members("add", NEWCOMER, "Dana Choi")
        password = hub.members("reset-password", NEWCOMER)
        assert password and password != first_password
        newcomer = pages[NEWCOMER] = page_of(NEWCOMER)
        assert newcomer.login_refused(first_password)
        newcomer.login(password)
        newcomer.open_lab()
        newcomer.open_assignment_list()
        newcomer.page.locator("#released_assignments_list .list_item", has_text=ASSIGNMENT).wait_for()
        newcomer.screenshot("added-mid-term")

        assistant = pages[ASSISTANT] = page_of(ASSISTANT)
        assistant.login(hub.members("add-ta", ASSISTANT))
        assistant.page.goto(f"{hub.url}/services/{hub.course_id}/formgrader")
        assistant.page.get_by_text(ASSIGNMENT).first.wait_for()
        assistant.screenshot("assistant-formgrader")
        assistant.expected_404.update({f"/user/{RIGHT}/", "/hub/api/oauth2/authorize"})
        assert assistant.open_refused(f"{hub.url}/user/{RIGHT}/lab") in (403, 404)

        dropped_password = hub.passwords[MUL_BUG]
        hub.members("drop", MUL_BUG)
        assert page_of(MUL_BUG).login_refused(dropped_password)
        assert MUL_BUG not in (hub.roster.read_text())
        assert pages[RIGHT].kernel_ids() == kernels

        for page in [*pages.values(), teacher]:
            if page.js_errors:
                wrong.append(f"{page.name}: JavaScript errors:\n" + "\n".join(page.js_errors))
        assert not wrong, "\n\n".join(wrong)
    finally:
        for context in contexts.values():
            context.close()
