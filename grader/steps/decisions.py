"""Who set a grade: the grader's marks, so that a regrade never replaces what a person decided.

nbgrader's ``Grade`` has no field saying who wrote its ``manual_score``: the grader writes the
verified points there, and formgrader writes a person's grade there too. So each time the grader
leaves a graded cell, it records here what it left (the score, whether it asked for a person, and
a checksum of the submission it graded), in a table of its own in the gradebook's database (the
same backups carry it). On the next run a cell whose grade differs from that mark was changed by
a person (formgrader's save writes the score and clears ``needs_manual_grade``).

A grade with a manual score and no mark is taken as a person's: the grader never overwrites a
score it cannot show it wrote.
"""
import hashlib
import json
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Boolean, Column, Float, MetaData, String, Table, select

_metadata = MetaData()
marks = Table(
    "grader_marks", _metadata,
    Column("assignment", String(128), primary_key=True),
    Column("student", String(128), primary_key=True),
    Column("notebook", String(128), primary_key=True),
    Column("cell", String(128), primary_key=True),
    Column("owner", String(16), nullable=False),      # Owner
    Column("score", Float),                           # the manual_score left in the cell
    Column("flagged", Boolean, nullable=False),       # the needs_manual_grade left
    Column("checksum", String(64), nullable=False),   # of the submission graded then
)


class Owner(str, Enum):
    """Whose score a cell holds, as the grader left it."""
    GRADER = "grader"      # the verified points
    PERSON = "person"      # a person's decision on the submission of ``checksum``
    REQUEUED = "requeued"  # a person's decision on an earlier submission, waiting for them again


@dataclass(frozen=True)
class Mark:
    owner: Owner
    score: float | None
    flagged: bool
    checksum: str


@dataclass(frozen=True)
class Left:
    """A cell's grade as found before this run touched it (nbgrader's autograde sets
    ``needs_manual_grade`` on every cell holding a manual score, so it is read first)."""
    score: float | None
    flagged: bool


def ensure_table(gb):
    _metadata.create_all(gb.engine)


def read_marks(gb, assignment):
    """{(student, notebook, cell): Mark} of ``assignment``."""
    rows = gb.db.execute(select(marks).where(marks.c.assignment == assignment))
    return {(r.student, r.notebook, r.cell): Mark(Owner(r.owner), r.score, r.flagged, r.checksum)
            for r in rows}


def write_mark(gb, assignment, student, notebook, cell, mark):
    key = (marks.c.assignment == assignment) & (marks.c.student == student) & \
          (marks.c.notebook == notebook) & (marks.c.cell == cell)
    gb.db.execute(marks.delete().where(key))
    gb.db.execute(marks.insert().values(assignment=assignment, student=student, notebook=notebook,
                                        cell=cell, owner=mark.owner.value, score=mark.score,
                                        flagged=mark.flagged, checksum=mark.checksum))


def decided_by_person(left, mark):
    """Whether a person has decided this cell: it holds a score no mark accounts for, or a
    score the grader asked a person about is no longer waiting for them."""
    if mark is None:
        return left.score is not None
    if mark.owner is not Owner.GRADER:
        return True
    return left.score != mark.score or (mark.flagged and not left.flagged)


def submission_checksum(path):
    """SHA-256 of the cell sources of the submitted notebook at ``path`` (outputs and metadata
    aside: running the notebook again is not a new answer)."""
    with open(path, encoding="utf-8") as file:
        cells = json.load(file).get("cells", [])
    sources = ["".join(c.get("source", "")) if isinstance(c, dict) else "" for c in cells]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()
