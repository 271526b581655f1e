"""Report rows from a hand-built gradebook: points, totals, flags and lateness."""
from datetime import datetime
from types import SimpleNamespace

from nbgrader.api import Gradebook

from grader.outcome import Ending, StudentOutcome
from grader.steps import report


def gradebook(tmp_path, **submitted_at):
    """Assignment 'a' due 2026-01-01 00:00 with one 2-point test; students submitted at those times."""
    course = SimpleNamespace(db_url=f"sqlite:///{tmp_path / 'gradebook.db'}", course_id="backprop")
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.add_assignment("a", duedate=datetime(2026, 1, 1))
        gb.add_notebook("nb", "a")
        gb.add_grade_cell("test_x", "nb", "a", max_score=2, cell_type="code")
        for student, when in submitted_at.items():
            gb.add_student(student)
            gb.add_submission("a", student, timestamp=when)
            grade = gb.find_grade("test_x", "nb", "a", student)
            grade.auto_score, grade.needs_manual_grade = 2, False  # as autograde leaves it
            gb.db.commit()
    return course


def test_a_late_submission_says_by_how_much_and_an_early_one_nothing(tmp_path):
    course = gradebook(tmp_path, early=datetime(2025, 12, 31, 23), late=datetime(2026, 1, 1, 2, 30))
    tests, rows = report.collect_rows(
        course, "a", [StudentOutcome(s, ending=Ending.COMPLETED) for s in ("early", "late")], True)
    assert tests == {"test_x": 2}
    assert [(r["student"], r["test_x"], r["total"], r["late_hours"], r["flags"]) for r in rows] == \
        [("early", 2, 2, None, ""), ("late", 2, 2, 2.5, "")]


def test_a_student_missing_from_the_gradebook_has_no_total(tmp_path):
    course = gradebook(tmp_path)
    _, (row,) = report.collect_rows(course, "a", [StudentOutcome("ghost", problems=["empty file"])], True)
    assert (row["total"], row["flags"], row["notes"]) == (None, "manual_review", "empty file")
