"""The instructor's whole loop on the simulated class: exact scores, flags, CSV, feedback."""
import csv
import json
import os
import subprocess
import sys

import nbformat
import pytest

from grader.course import Course, GradeOptions
from grader.markers import split_hidden
from grader.demo.demo import DEMO_ASSIGNMENT, run_demo
from html_text import page_text

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

OPTIONS = GradeOptions(jobs=2, cell_timeout=10, notebook_timeout=120, verify_timeout=10)  # as `make demo`: roomy for tests side by side
FLAGS = {"infinite_loop": {"timed_out"}, "kernel_crash": {"kernel_died", "manual_review", "code_review"}}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    result, expected = run_demo(Course(), tmp_path_factory.mktemp("demo") / "course", OPTIONS)
    return result, expected


def test_every_student_gets_the_exact_expected_score(graded):
    result, expected = graded
    assert len(result.rows) == len(expected) == 32
    got = {r["student"]: r["total"] for r in result.rows}
    assert got == {student: total for student, (_, total) in expected.items()}


def test_flags_name_what_happened(graded):
    result, expected = graded
    for row in result.rows:
        kind = expected[row["student"]][0]
        flags = set(filter(None, row["flags"].split(";")))
        if kind.startswith("mangled_"):
            assert flags == {"repaired"}, (kind, row)
        elif kind.startswith("not_a_notebook_"):
            assert flags == {"manual_review"} and row["total"] is None, (kind, row)
        else:
            assert flags == FLAGS.get(kind, set()), (kind, row)
        assert row["sandbox"] == "on"
        assert row["verified"] == ("no" if kind.startswith("not_a_notebook_") else "yes")


def test_not_a_notebook_is_listed_for_review_with_the_reason(graded):
    result, expected = graded
    reasons = {expected[s][0]: why for s, why in result.manual_review.items()}
    assert set(reasons) == {"not_a_notebook_invalid_json", "not_a_notebook_empty",
                            "not_a_notebook_binary", "kernel_crash"}
    assert "add line 2: uses os._exit: os._exit(1)" in reasons["kernel_crash"]
    assert "invalid JSON" in reasons["not_a_notebook_invalid_json"]
    assert "empty file" in reasons["not_a_notebook_empty"]
    assert "binary file" in reasons["not_a_notebook_binary"]


def test_mangled_submissions_record_their_repairs(graded):
    result, expected = graded
    notes = {expected[r["student"]][0]: r["notes"] for r in result.rows}
    assert "add: answer cell missing" in notes["mangled_deleted"]
    assert "mul: answer cell duplicated" in notes["mangled_duplicated"]
    assert "added code cell(s) dropped" in notes["mangled_added"]
    assert "cells moved" in notes["mangled_moved"]
    assert "markdown cell turned back into code" in notes["mangled_markdown"]
    assert "answer cell content" in notes["mangled_stripped"]
    assert "kernel 'conda-env-ml-py' replaced" in notes["mangled_kernel"]
    assert "upgraded from nbformat 3" in notes["mangled_nbformat3"]
    assert "renamed 'backprop (1).ipynb'" in notes["mangled_renamed"]


def test_csv_has_one_row_per_student_with_tests_total_and_flags(graded):
    result, expected = graded
    with open(result.csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "test_square", "test_add", "test_mul", "test_apple_shopping",
                             "test_fruit_shopping", "total", "max", "late_hours", "flags", "sandbox", "verified", "mistakes",
                             "notes"]
    by_kind = {expected[r["student"]][0]: r for r in rows}
    source_mul = by_kind["source_mul"]
    assert (source_mul["test_mul"], source_mul["test_apple_shopping"], source_mul["total"]) == ("0.0", "2.0", "9.0")
    assert by_kind["not_a_notebook_empty"]["total"] == ""  # never a silent 0
    assert all(p.stat().st_size > 10_000 for p in result.figures)


def test_feedback_shows_visible_output_and_messages_but_no_hidden_tests(graded, tmp_path):
    result, expected = graded
    pages = sorted(result.feedback.glob(f"*/{DEMO_ASSIGNMENT}/*.html"))
    assert len(pages) == 29  # every gradeable student
    source_mul = next(s for s, (kind, _) in expected.items() if kind == "source_mul")
    page = page_text(result.feedback / source_mul / DEMO_ASSIGNMENT / "backprop.html")
    assert "visible check passed" in page
    assert "grad_output" in page and "GradientMistake" in page  # the hidden test's message
    assert "verified by the grader on fresh inputs: failed (wrong gradient for input 0)" in page
    secrets = hidden_only_lines(DEMO_ASSIGNMENT, "backprop")
    assert len(secrets) > 10
    for path in pages:
        text = page_text(path)
        for secret in ["BEGIN HIDDEN TESTS", *secrets]:
            assert secret not in text, (path, secret)


def hidden_only_lines(assignment, notebook):
    """Lines of the hidden tests (12 characters or more) that appear nowhere in the release nor in
    the solution's visible parts (a reference Function in a hidden test shares lines with the
    answer a correct student writes)."""
    course = Course()
    release = (course.release / assignment / f"{notebook}.ipynb").read_text()
    solution = nbformat.read(course.solutions / assignment / f"{notebook}.ipynb", as_version=4)
    parts = [split_hidden(cell.source) for cell in solution.cells if cell.cell_type == "code"]
    visible = "\n".join(shown for shown, _ in parts)
    hidden = [line.strip() for _, secret in parts for line in secret.splitlines()]
    return sorted({line for line in hidden if len(line) >= 12 and line not in visible
                   and json.dumps(line)[1:-1] not in release})


def test_missing_sandbox_refuses_to_grade_without_no_sandbox(graded):
    result, _ = graded
    course_root = result.csv.parents[3]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))  # no /usr/bin/bwrap
    result = subprocess.run([sys.executable, "-m", "grader", "--course", str(course_root), "grade",
                             "a1_backprop"], capture_output=True, text=True, env=env, cwd=Course().root)
    assert result.returncode == 1
    assert "--no-sandbox" in result.stderr and "bubblewrap" in result.stderr


def test_unknown_assignment_is_the_instructors_error():
    result = subprocess.run([sys.executable, "-m", "grader", "grade", "nope", "--no-sandbox"],
                            capture_output=True, text=True, cwd=Course().root)
    assert result.returncode == 1 and "unknown assignment 'nope'" in result.stderr
