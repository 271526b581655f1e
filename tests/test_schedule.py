"""The calendar into the gradebook: due dates, one student's extension, and what late_hours says."""
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from nbgrader.api import Gradebook

from grader import schedule
from grader.outcome import Ending, StudentOutcome
from grader.steps import report


def course_with(tmp_path, calendar, extensions=None, **submitted_at):
    """Assignment 'a' (one 2-point test), students submitted at those times (UTC)."""
    course = SimpleNamespace(db_url=f"sqlite:///{tmp_path / 'gradebook.db'}", course_id="backprop",
                             grader=tmp_path / "grader")
    course.grader.mkdir()
    (course.grader / "calendar.csv").write_text(calendar, encoding="utf-8")
    if extensions is not None:
        (course.grader / "extensions.csv").write_text(extensions, encoding="utf-8")
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.add_assignment("a")
        gb.add_notebook("nb", "a")
        gb.add_grade_cell("test_x", "nb", "a", max_score=2, cell_type="code")
        for student, when in submitted_at.items():
            gb.add_student(student)
            gb.add_submission("a", student, timestamp=when)
    return course


def late_hours(course, students):
    _, rows = report.collect_rows(course, "a", [StudentOutcome(s, ending=Ending.COMPLETED) for s in students], True)
    return {r["student"]: r["late_hours"] for r in rows}


DUE_SEOUL = "assignment,due,lms_name,lms_id\na,2026-03-16T23:59:00+09:00,Backprop 1,4711\n"
AT = dict(ann=datetime(2026, 3, 16, 17, 59), ben=datetime(2026, 3, 16, 17, 59))  # UTC: 3 h after 14:59 UTC


def test_an_extension_changes_one_students_late_hours(tmp_path):
    course = course_with(tmp_path, DUE_SEOUL, **AT)
    schedule.apply(course, "a", ["ann", "ben"])
    assert late_hours(course, ["ann", "ben"]) == {"ann": 3.0, "ben": 3.0}
    (course.grader / "extensions.csv").write_text("student,assignment,hours\nben,a,2\n")
    schedule.apply(course, "a", ["ann", "ben"])
    assert late_hours(course, ["ann", "ben"]) == {"ann": 3.0, "ben": 1.0}
    (course.grader / "extensions.csv").write_text("student,assignment,hours\nben,a,48\n")
    schedule.apply(course, "a", ["ann", "ben"])
    assert late_hours(course, ["ann", "ben"]) == {"ann": 3.0, "ben": None}
    (course.grader / "extensions.csv").write_text("student,assignment,hours\n")  # taken back
    schedule.apply(course, "a", ["ann", "ben"])
    assert late_hours(course, ["ann", "ben"]) == {"ann": 3.0, "ben": 3.0}


def test_an_extension_given_before_the_first_grading_is_on_the_new_submission(tmp_path):
    course = course_with(tmp_path, DUE_SEOUL, "student,assignment,hours\ncal,a,24\n")
    schedule.apply(course, "a", ["cal"])
    with Gradebook(course.db_url, course.course_id) as gb:  # as autograde then records it
        gb.update_or_create_submission("a", "cal", timestamp=datetime(2026, 3, 17, 1))
        submission = gb.find_submission("a", "cal")
        assert (submission.extension, submission.duedate) == (timedelta(hours=24), datetime(2026, 3, 17, 14, 59))


def test_an_empty_due_leaves_the_gradebooks_own(tmp_path):
    course = course_with(tmp_path, "assignment,due,lms_name,lms_id\na,,,\n", **AT)
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.update_or_create_assignment("a", duedate=datetime(2026, 3, 16, 16, 59))  # set in formgrader
    schedule.apply(course, "a", ["ann"])
    assert late_hours(course, ["ann"]) == {"ann": 1.0}


@pytest.mark.parametrize("due, message", [("2026-03-16 23:59:00", "has no UTC offset"),
                                          ("2026-03-16 23:59:00 KST", "is not an ISO 8601 time"),
                                          ("next monday", "is not an ISO 8601 time")])
def test_a_due_date_that_could_be_misread_is_refused_with_its_line(tmp_path, due, message):
    course = course_with(tmp_path, f"assignment,due,lms_name,lms_id\na,{due},,\n")
    with pytest.raises(schedule.CalendarError, match=f"calendar.csv:2: .*{message}"):
        schedule.apply(course, "a", [])


def test_the_tracked_calendar_names_every_assignment():
    from grader.course import Course
    course = Course()
    assert set(schedule.read_calendar(schedule.calendar_path(course))) == set(course.assignments())


def submit_to_exchange(course, student, when, marker):
    """A submission in the exchange's inbound as `nbgrader submit` leaves it, at ``when`` (UTC)."""
    stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    folder = course.exchange / course.course_id / "inbound" / f"{student}+a1_backprop+{stamp}+{marker}"
    folder.mkdir(parents=True)
    release = course.release / "a1_backprop" / "backprop.ipynb"
    (folder / "backprop.ipynb").write_text(release.read_text(encoding="utf-8").replace(
        "raise NotImplementedError()", f"raise NotImplementedError()  # {marker}", 1), encoding="utf-8")
    (folder / "timestamp.txt").write_text(stamp)


def test_each_student_counts_their_last_submission_before_their_own_due_date(a1_generated, tmp_path):
    from grader.steps import collect
    course = a1_generated(tmp_path / "course")
    (course.grader / "calendar.csv").write_text(
        "assignment,due,lms_name,lms_id\na1_backprop,2026-03-16T23:59:00+09:00,,\n")  # 14:59 UTC
    (course.grader / "extensions.csv").write_text("student,assignment,hours\nben,a1_backprop,24\n")
    for student in ("ann", "ben"):
        for marker, when in (("on-time", datetime(2026, 3, 16, 12)), ("next-day", datetime(2026, 3, 17, 10)),
                             ("a-week-later", datetime(2026, 3, 23, 10))):
            submit_to_exchange(course, student, when, marker)
    submit_to_exchange(course, "cho", datetime(2026, 3, 18), "only-late")
    collect.from_exchange(course, "a1_backprop")
    counted = {student: next(marker for marker in ("on-time", "next-day", "a-week-later", "only-late")
                             if marker in (course.submission(student, "a1_backprop") / "backprop.ipynb").read_text())
               for student in ("ann", "ben", "cho")}
    # ann: due 14:59 UTC; ben: a day more; cho submitted only late: their last counts
    assert counted == {"ann": "on-time", "ben": "next-day", "cho": "only-late"}
