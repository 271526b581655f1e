"""The class list: who is in the course, and who they are in the LMS.

``grader/roster.csv`` is private (names, LMS ids: kept out of git); ``grader/roster.example.csv``
shows its columns. ``student_id`` and ``name`` are required; ``student_id`` is the nbgrader
student id, the hub login and the OS user name, so it must be a valid Linux user name
(lower-case letters, digits, ``_`` and ``-``, starting with a letter). The LMS columns are
Canvas's: ``canvas_id`` (Canvas's user ID), ``sis_user_id``, ``sis_login_id``, ``section``;
Canvas matches a grade to a student by ID or SIS User ID.
"""
import csv
import re
from dataclasses import dataclass
from pathlib import Path

USER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
LMS_COLUMNS = ("canvas_id", "sis_user_id", "sis_login_id", "section")


@dataclass(frozen=True)
class Student:
    id: str
    name: str
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    @property
    def first_last(self):
        first, _, last = self.name.partition(" ")
        return first, last


class RosterError(ValueError):
    pass


def default_path(course_root):
    """The course's roster: grader/roster.csv, or the tracked example when there is none yet."""
    private = Path(course_root) / "grader" / "roster.csv"
    return private if private.exists() else private.with_name("roster.example.csv")


def read_roster(path):
    """The students of a roster CSV, in file order; checks the ids."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    students, seen = [], set()
    for line, row in enumerate(rows, start=2):
        sid, name = (row.get("student_id") or "").strip(), (row.get("name") or "").strip()
        if not USER_NAME.match(sid):
            raise RosterError(f"{path}:{line}: student id {sid!r} is not a valid user name")
        if sid in seen:
            raise RosterError(f"{path}:{line}: student id {sid!r} twice")
        seen.add(sid)
        students.append(Student(sid, name or sid, **{c: (row.get(c) or "").strip() for c in LMS_COLUMNS}))
    return students
