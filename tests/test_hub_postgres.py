"""The gradebook on PostgreSQL: stock nbgrader commands against Debian's server (COURSE_DB_URL)."""
import csv
import io
import shutil

import nbformat
import pytest

from grader import simulate
from grader.course import Course
from postgres_server import fresh_database, postgres  # noqa: F401 (the fixture)

ASSIGNMENT, NOTEBOOK = "a1_backprop", "backprop"


@pytest.fixture
def course(tmp_path, postgres, monkeypatch):  # noqa: F811
    monkeypatch.setenv("COURSE_DB_URL", fresh_database(postgres))
    return Course().copy_to(tmp_path / "course")


def test_generate_autograde_and_export_on_postgres(course, postgres):  # noqa: F811
    """generate_assignment writes the assignment into PostgreSQL, not SQLite; a stock autograde
    of one right submission records 12 points; `nbgrader export` reads them back."""
    course.nbgrader("generate_assignment", ASSIGNMENT, "--force")
    assert not course.gradebook.exists(), "the gradebook went to SQLite, not to COURSE_DB_URL"
    course.nbgrader("db", "student", "add", "alice", "--first-name=Alice", "--last-name=Kim")

    answers = simulate.solution_answers(course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    release = course.release / ASSIGNMENT
    submitted = course.submitted / "alice" / ASSIGNMENT
    shutil.copytree(release, submitted)
    nbformat.write(simulate.build_submission(release / f"{NOTEBOOK}.ipynb", answers),
                   submitted / f"{NOTEBOOK}.ipynb")
    course.nbgrader("autograde", ASSIGNMENT, "--student=alice")

    out = course.root / "grades.csv"
    course.nbgrader("export", f"--to={out}")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["assignment"], r["student_id"], float(r["score"]), float(r["max_score"])) for r in rows] \
        == [(ASSIGNMENT, "alice", 12.0, 12.0)], rows
    tables = postgres._psql("SELECT count(*) FROM grade", database=postgres.database)
    assert int(tables) > 0
