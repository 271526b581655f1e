"""The gradebook on PostgreSQL: stock nbgrader commands against Debian's server (COURSE_DB_URL)."""
import csv
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.demo import simulate
from grader.course import REPO_ROOT, Course
from postgres_server import fresh_database, postgres  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow  # a PostgreSQL server and a class graded on it and on SQLite

ASSIGNMENT, NOTEBOOK = "a1_backprop", "backprop"


@pytest.fixture
def course(tmp_path, postgres, monkeypatch):  # noqa: F811
    monkeypatch.setenv("COURSE_DB_URL", fresh_database(postgres))
    return Course().copy_to(tmp_path / "course")


def test_generate_autograde_and_export_on_postgres(course, postgres):  # noqa: F811
    """generate_assignment writes the assignment into PostgreSQL, not SQLite; a stock autograde
    of one right submission records 12 points; `nbgrader export` reads them back."""
    course.nbgrader("generate_assignment", ASSIGNMENT, "--force")
    assert not (course.grader / "gradebook.db").exists(), "the gradebook went to SQLite, not to COURSE_DB_URL"
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


# --- the batch grader's PostgreSQL path (workers write to it directly; no second pass) -----------
KINDS = ("correct", "source_mul", "blank", "partly_done", "swapped", "kernel_crash", "mangled_duplicated",
         "not_a_notebook_empty")
ADDRESS = re.compile(r"0x[0-9a-f]{6,}")
PYTHON = str(Path(sys.prefix).resolve() / "bin" / "python")  # the sandbox binds the venv's real path


def small_class(course, folder):
    """One simulated student of each kind in KINDS, as a folder of Canvas-named files."""
    plan = [p for p in simulate.simulated_class(course.solutions / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
            if p[0] in KINDS]
    plan = list({kind: (kind, answers, total) for kind, answers, total in plan}.values())
    return simulate.write_lms_download(folder, course.release / ASSIGNMENT / f"{NOTEBOOK}.ipynb", plan)


def grader_command(course, *args, db_url, jobs=2):
    """`python -m grader ARGS` on ``course`` as (argv, env), its gradebook at ``db_url`` (None:
    SQLite); `grade` with the sandbox where we are root."""
    sandbox = [] if os.geteuid() == 0 else ["--no-sandbox"]
    env = dict(os.environ, COURSE_DB_URL=db_url) if db_url else \
        {k: v for k, v in os.environ.items() if k != "COURSE_DB_URL"}
    extra = sandbox + ["--jobs", str(jobs), "--cell-timeout", "10", "--verify-timeout", "20"] if args[0] == "grade" else []
    return [PYTHON, "-m", "grader", "--course", str(course.root), *args, *extra], env


def grader_cli(course, *args, db_url):
    command, env = grader_command(course, *args, db_url=db_url)
    return subprocess.run(command, cwd=REPO_ROOT, env=env, text=True, capture_output=True, timeout=900)


def feedback_text(html):
    """What a student reads in a feedback page, without what differs from run to run whatever the
    gradebook: memory addresses (`<AddBackward0 at 0x7f...>`), how stdout was cut into chunks
    (the same text in one <pre> or two), and the execution count of the cell a kernel died in."""
    text = re.sub(r"<[^>]+>", " ", html)
    text = ADDRESS.sub("0xADDRESS", text)
    text = re.sub(r"In\s*\[\s*\d*\s*\]:", "", text)
    return " ".join(text.split())


def graded_outputs(course, assignment):
    with open(course.grader / "reports" / assignment / "grades.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["student"])
    feedback = {p.relative_to(course.feedback).as_posix(): feedback_text(p.read_text())
                for p in sorted(course.feedback.glob(f"*/{assignment}/*.html"))}
    return rows, feedback


def second_assignment(course, folder, db_url):
    """a2_layers generated and collected in ``course`` (two right, one blank); {student: total}."""
    assignment, total = "a2_layers", 10
    course.nbgrader("generate_assignment", assignment, "--force", env={"COURSE_DB_URL": db_url})
    (release_path,) = course.release_notebooks(assignment)
    (solution_path,) = sorted((course.solutions / assignment).glob("*.ipynb"))
    correct = simulate.solution_answers(solution_path)
    plan = [("correct", correct, total), ("blank", {}, 0), ("correct", correct, total)]
    expected = {s: t for s, (_, t) in simulate.write_lms_download(folder, release_path, plan).items()}
    collected = grader_cli(course, "collect", assignment, "--from", str(folder), db_url=db_url)
    assert collected.returncode == 0, collected.stderr[-3000:]
    return assignment, expected


def test_sqlite_and_postgres_grade_a_class_alike(tmp_path, postgres, monkeypatch):  # noqa: F811
    """The same class graded on SQLite and on PostgreSQL: the same grades.csv (scores, flags,
    notes), the same feedback, and `nbgrader export` agrees with grades.csv. On PostgreSQL a
    second assignment is graded at the same time, by a grading process of its own, into the same
    gradebook: both finish, and every grade of both is in the gradebook and in its grades.csv."""
    monkeypatch.delenv("COURSE_DB_URL", raising=False)
    results = {}
    for db in ("sqlite", "postgres"):
        db_url = fresh_database(postgres) if db == "postgres" else None
        env = {"COURSE_DB_URL": db_url} if db_url else {}
        course = Course().copy_to(tmp_path / db)
        course.nbgrader("generate_assignment", ASSIGNMENT, "--force", env=env)
        expected = small_class(course, tmp_path / f"{db}-download")
        collected = grader_cli(course, "collect", ASSIGNMENT, "--from", str(tmp_path / f"{db}-download"),
                               db_url=db_url)
        assert collected.returncode == 0, collected.stderr[-3000:]
        alongside = None
        if db == "postgres":
            other, other_expected = second_assignment(course, tmp_path / "a2-download", db_url)
            command, other_env = grader_command(course, "grade", other, db_url=db_url, jobs=1)
            alongside = subprocess.Popen(command, cwd=REPO_ROOT, env=other_env, text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        graded = grader_cli(course, "grade", ASSIGNMENT, db_url=db_url)
        assert graded.returncode == 0, graded.stderr[-3000:]
        if alongside:
            output = alongside.communicate(timeout=900)[0]
            assert alongside.returncode == 0, output[-3000:]
            other_rows, _ = graded_outputs(course, other)
            assert {r["student"]: float(r["total"]) for r in other_rows} == other_expected, other_rows
        rows, feedback = graded_outputs(course, ASSIGNMENT)
        out = course.root / "export.csv"
        course.nbgrader("export", f"--to={out}", env=env)
        exported = {(r["assignment"], r["student_id"]): float(r["score"])
                    for r in csv.DictReader(io.StringIO(out.read_text()))}
        for row in rows:
            if row["total"]:
                assert exported[ASSIGNMENT, row["student"]] == float(row["total"]), (db, row, exported)
        if alongside:  # the gradebook's students without a submission of it score 0 in the export
            assert {s: t for (a, s), t in exported.items() if a == other and t} == \
                {s: t for s, t in other_expected.items() if t}, exported
            assert {s for (a, s) in exported if a == other} >= set(other_expected), exported
        assert {r["student"]: (float(r["total"]) if r["total"] else None) for r in rows} == \
            {s: total for s, (_, total) in expected.items()}, (db, rows)
        results[db] = rows, feedback
    assert results["postgres"][0] == results["sqlite"][0]
    assert results["postgres"][1] == results["sqlite"][1]
