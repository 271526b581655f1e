"""Grades into the LMS: Canvas's gradebook import CSV, as an nbgrader export plugin.

    nbgrader export --exporter=grader.export.CanvasExportPlugin --to canvas.csv
    python -m grader export [a1_backprop ...] --to canvas.csv

Canvas's format: the header ``Student,ID,SIS User ID,SIS Login ID,Section`` and one column per
assignment named ``<name> (<Canvas id>)``; the second row ``Points Possible,,,,,<max>``; then a
row per student. Canvas matches students by ID or SIS User ID (from the roster,
``grader/roster.py``) and assignments by the id in brackets (``lms_name`` and ``lms_id`` of
``grader/calendar.csv``); an imported score replaces the one in Canvas, an empty cell changes
nothing. So a student a person must still look at (any grade cell waiting for manual grading in
the gradebook, or no total in the grader's latest grades.csv) is left empty, never 0; so is a
student who submitted nothing (Canvas's missing-submission policy decides).
"""
import csv
import os
from pathlib import Path

from nbgrader.api import MissingEntry
from nbgrader.plugins import ExportPlugin
from traitlets import Unicode

from . import roster as roster_file
from . import schedule

FIXED_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


class ExportError(ValueError):
    pass


class CanvasExportPlugin(ExportPlugin):
    """Canvas's gradebook import CSV of the gradebook's assignments (``--assignment`` to choose)."""

    roster = Unicode("", help="roster CSV (default: $COURSE_ROSTER, the hub's; else the course's "
                              "grader/roster.csv, else the example)").tag(config=True)
    calendar = Unicode("", help="calendar CSV with each assignment's lms_name and lms_id "
                                "(default: the course's grader/calendar.csv)").tag(config=True)
    course_root = Unicode("", help="the course root (default: nbgrader's CourseDirectory.root)").tag(config=True)
    reports = Unicode("", help="the grader's reports folder, <assignment>/grades.csv "
                               "(default: the course's grader/reports)").tag(config=True)

    def export(self, gradebook):
        root = Path(self.course_root or self.parent.coursedir.root)
        students = roster_file.read_roster(self.roster or os.environ.get("COURSE_ROSTER")
                                           or roster_file.default_path(root))
        dates = schedule.read_calendar(self.calendar or root / "grader" / "calendar.csv")
        reports = Path(self.reports or root / "grader" / "reports")
        names = [str(a) for a in self.assignment] or [a.name for a in gradebook.assignments]
        wanted = {str(s) for s in self.student}
        unknown = sorted({s.id for s in gradebook.students} - {s.id for s in students})
        if unknown and not wanted:
            self.log.warning("not in the roster, so not exported: %s", ", ".join(unknown))
        dest = self.to or "canvas_grades.csv"
        write_csv(dest, canvas_rows(gradebook, names, [s for s in students if not wanted or s.id in wanted],
                                    dates, reports))
        self.log.info("Canvas import file: %s", dest)


def canvas_rows(gradebook, assignments, students, dates, reports):
    """The CSV's rows: header, Points Possible, one per student (a score or '' per assignment)."""
    missing = [a for a in assignments if not dates.get(a) or not dates[a].lms_id]
    if missing:
        raise ExportError(f"no lms_id in grader/calendar.csv for {', '.join(missing)}: "
                          "Canvas matches an assignment by the id in its column's name")
    header = FIXED_COLUMNS + [f"{dates[a].lms_name or a} ({dates[a].lms_id})" for a in assignments]
    possible = ["Points Possible", "", "", "", ""] + [_points(gradebook.find_assignment(a).max_score)
                                                      for a in assignments]
    unreviewed = {a: _without_total(reports / a / "grades.csv") for a in assignments}
    rows = [header, possible]
    for student in students:
        scores = [_score(gradebook, a, student.id, unreviewed[a]) for a in assignments]
        rows.append([student.name, student.canvas_id, student.sis_user_id, student.sis_login_id,
                     student.section, *scores])
    return rows


def _score(gradebook, assignment, student, unreviewed):
    """The student's total as Canvas should get it, or '' (not submitted, or a person must look)."""
    if student in unreviewed:
        return ""
    try:
        submission = gradebook.find_submission(assignment, student)
    except MissingEntry:
        return ""
    if any(grade.needs_manual_grade for notebook in submission.notebooks for grade in notebook.grades):
        return ""
    return _points(submission.score)


def _without_total(grades_csv):
    """Students the grader's latest report left without a total (manual review)."""
    if not grades_csv.exists():
        return set()
    with open(grades_csv, newline="", encoding="utf-8") as f:
        return {row["student"] for row in csv.DictReader(f) if not row.get("total")}


def _points(value):
    return f"{round(float(value), 2):g}"


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)


def export(course, assignments, to):
    """``python -m grader export``: the plugin on the course's gradebook; returns the file's path."""
    from nbgrader.api import Gradebook
    plugin = CanvasExportPlugin(config=course.config(
        ExportPlugin={"to": str(to), "assignment": list(assignments)},
        CanvasExportPlugin={"course_root": str(course.root)}))
    try:
        with Gradebook(course.db_url, course.course_id) as gb:
            plugin.export(gb)
    except (roster_file.RosterError, schedule.CalendarError, MissingEntry, OSError) as error:
        raise ExportError(str(error)) from None
    return Path(to)
