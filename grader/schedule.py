"""The course calendar: when each assignment is due, each student's extension, what the LMS calls it.

``grader/calendar.csv`` (tracked; one row per assignment)::

    assignment,due,lms_name,lms_id
    a1_backprop,2026-03-16T23:59:00+09:00,Backprop 1,4711

``due`` is ISO 8601 with its UTC offset (a time without one is refused: nbgrader would read it
as UTC, and a zone name such as "KST" is not understood); empty leaves the gradebook's due date
as it is (set in formgrader or with ``nbgrader db assignment add --duedate``). ``lms_name`` and ``lms_id`` are
the assignment's name and id in Canvas (``grader/export.py``).

``grader/extensions.csv`` (private, kept out of git)::

    student,assignment,hours
    bob,a1_backprop,48

``apply`` writes both into the gradebook, as nbgrader's own ``Assignment.duedate`` and
``SubmittedAssignment.extension``: nbgrader's late time (grades.csv's ``late_hours``), its late
penalty, formgrader and the exchange's ``collect --before-duedate`` all read them from there.
Which submission counts is nbgrader's ``ExchangeCollect.before_duedate`` (``grader/nbgrader_config.py``):
on, each student's last submission before their own due date (the calendar's, plus their
extension), else their last; off, their last. ``CollectBeforeDue`` is nbgrader's collect with
that choice (nbgrader's own takes the assignment's due date for everyone);
``python -m grader collect --exchange`` uses it.
"""
import csv
import datetime
import glob
import os
from dataclasses import dataclass
from pathlib import Path

from dateutil.parser import isoparse
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect, groupby


class CalendarError(ValueError):
    pass


@dataclass(frozen=True)
class Dates:
    """One assignment's row of the calendar; ``due`` in UTC without tzinfo, as nbgrader keeps it."""
    assignment: str
    due: datetime.datetime | None
    lms_name: str = ""
    lms_id: str = ""


def calendar_path(course):
    return course.grader / "calendar.csv"


def extensions_path(course):
    return course.grader / "extensions.csv"


def _rows(path):
    if not Path(path).exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(enumerate(csv.DictReader(f), start=2))


def _utc(text, where):
    try:
        moment = isoparse(text)
    except ValueError:
        raise CalendarError(f"{where}: {text!r} is not an ISO 8601 time (2026-03-16T23:59:00+09:00)") from None
    if moment.tzinfo is None:
        raise CalendarError(f"{where}: {text!r} has no UTC offset (write +09:00 for Korea)")
    return moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def read_calendar(path):
    """{assignment: Dates} of a calendar CSV (none when the file does not exist)."""
    dates = {}
    for line, row in _rows(path):
        name, due = (row.get("assignment") or "").strip(), (row.get("due") or "").strip()
        if not name:
            raise CalendarError(f"{path}:{line}: no assignment")
        dates[name] = Dates(name, _utc(due, f"{path}:{line}") if due else None,
                            (row.get("lms_name") or "").strip(), (row.get("lms_id") or "").strip())
    return dates


def read_extensions(path):
    """{(student, assignment): timedelta} of an extensions CSV (none when it does not exist)."""
    extensions = {}
    for line, row in _rows(path):
        try:
            hours = float(row["hours"])
        except (KeyError, TypeError, ValueError):
            raise CalendarError(f"{path}:{line}: hours must be a number") from None
        extensions[(row["student"].strip(), row["assignment"].strip())] = datetime.timedelta(hours=hours)
    return extensions


def apply(course, assignment, students):
    """Set ``assignment``'s due date from the calendar and the extensions of ``students`` (those
    being graded: their submission rows are made now if new, so autograde's late penalty sees
    the extension too). A student whose extension was removed from the file loses it."""
    dates = read_calendar(calendar_path(course)).get(assignment)
    extensions = read_extensions(extensions_path(course))
    with Gradebook(course.db_url, course.course_id) as gb:
        if dates is not None and dates.due is not None:
            gb.update_or_create_assignment(assignment, duedate=dates.due)
        for student in students:
            extension = extensions.get((student, assignment))
            try:
                submission = gb.find_submission(assignment, student)
            except MissingEntry:
                if extension is None:
                    continue
                gb.update_or_create_student(student)
                submission = gb.update_or_create_submission(assignment, student)
            submission.extension = extension
        gb.db.commit()


class CollectBeforeDue(ExchangeCollect):
    """nbgrader's exchange collect, counting each student's own due date (with their extension)."""

    def init_src(self):
        super().init_src()  # checks the exchange; picks by the assignment's due date
        if not self.before_duedate:
            return
        root, assignment = Path(self.coursedir.root), self.coursedir.assignment_id
        dates = read_calendar(root / "grader" / "calendar.csv").get(assignment)
        due = dates.due if dates and dates.due else self.duedate
        if due is None:
            return
        extensions = read_extensions(root / "grader" / "extensions.csv")
        pattern = os.path.join(self.inbound_path, f"{self.coursedir.student_id or '*'}+{assignment}+*")
        self.src_records = []
        for student, records in groupby([self._path_to_record(f) for f in glob.glob(pattern)],
                                        lambda record: record["username"]).items():
            records = self._sort_by_timestamp(records)
            own_due = due + extensions.get((student, assignment), datetime.timedelta(0))
            self.src_records.append(next((r for r in records if r["timestamp"] <= own_due), records[0]))
