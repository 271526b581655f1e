"""Score: the verified result becomes the grade; where it differs from the notebook's, a person decides.

nbgrader keeps the notebook's own result as each grade's ``auto_score``; the verified points go
into ``manual_score``, which nbgrader's totals, formgrader, feedback and export already prefer.
A cell where the two disagree, in either direction, keeps both and is marked for manual grading
(formgrader lists it); the student's row goes to manual review with both results.

A person's decision stands (``decisions.py`` tells theirs from ours): a cell a person graded
keeps their score on every regrade. When the submission changed since they graded it, the cell
goes back to the manual-review queue, still holding their score, with the new verified result
beside it in the notes.
"""
from contextlib import contextmanager
from dataclasses import dataclass

from nbgrader.api import Gradebook, MissingEntry

from ..outcome import Disagreement
from . import autograde, decisions
from .decisions import Left, Mark, Owner


@dataclass(frozen=True)
class Requeued:
    """A person's grade on an earlier submission, and what the grader finds on the new one."""
    grade_id: str
    decision: float | None
    notebook_points: float
    verified_points: float

    def describe(self):
        decided = "no score" if self.decision is None else f"{self.decision:g}"
        return (f"{self.grade_id}: graded by hand ({decided}) before the submission changed; "
                f"now verified {self.verified_points:g} (notebook {self.notebook_points:g}): "
                f"grade it again / 다시 채점 필요")


@contextmanager
def recorder(course, assignment):
    """``record(outcome)``: write one verified outcome's points to the gradebook, fill its
    ``disagreements``; one gradebook session for the run, each student's write under the
    run's gradebook lock (SQLite: the workers record pass 2 meanwhile).

    Every grade is read first, before any of this run's autograding touches it: that is the
    state a person left it in.

    A student whose grades cannot be written gets a problem (manual review) and nothing of
    theirs is half-written: the others go on.
    """
    with Gradebook(course.db_url, course.course_id) as gb:
        decisions.ensure_table(gb)
        grade_cells = {cell.name: notebook.name for notebook in gb.find_assignment(assignment).notebooks
                       for cell in notebook.grade_cells}
        left = _grades_as_left(gb, assignment)
        marks = decisions.read_marks(gb, assignment)
        gb.db.commit()  # no read left open while the workers write

        def record(outcome):
            with autograde.gradebook_lock(course):
                try:
                    found = _record(gb, course, assignment, grade_cells, left, marks, outcome)
                    gb.db.commit()
                except Exception as error:  # this student only
                    gb.db.rollback()
                    outcome.problems.append(f"score failed: {type(error).__name__}: {str(error)[:300]}")
                    return
            outcome.disagreements += found
        yield record


def _grades_as_left(gb, assignment):
    """{(student, notebook, cell): Left} of every grade of ``assignment`` now."""
    return {(submission.student.id, notebook.name, grade.name): Left(grade.manual_score, bool(grade.needs_manual_grade))
            for submission in gb.find_assignment(assignment).submissions
            for notebook in submission.notebooks for grade in notebook.grades}


def _checksum(course, assignment, student, notebook):
    path = course.submission(student, assignment) / f"{notebook}.ipynb"
    return decisions.submission_checksum(path) if path.exists() else "missing"


def _record(gb, course, assignment, grade_cells, left, marks, outcome):
    """Set one student's verified points where no person decided; returns the Disagreements found.
    A person's decision on a changed submission becomes a problem (``Requeued``)."""
    found, student = [], outcome.student
    for grade_id, verdict in outcome.verdicts.items():
        if grade_id not in grade_cells:
            continue
        notebook_name = grade_cells[grade_id]
        try:
            grade = gb.find_grade(grade_id, notebook_name, assignment, student)
        except MissingEntry:
            continue
        key = (student, notebook_name, grade_id)
        before, mark = left.get(key, Left(None, False)), marks.get(key)
        checksum = _checksum(course, assignment, student, notebook_name)
        verified = grade.max_score if verdict.passed else 0.0
        notebook = grade.auto_score or 0.0
        if decisions.decided_by_person(before, mark):
            outcome.graded_by_hand.append(grade_id)
            waiting = mark is not None and mark.owner is Owner.REQUEUED and before == Left(mark.score, mark.flagged)
            if waiting or (mark is not None and mark.checksum != checksum):
                grade.needs_manual_grade = True
                outcome.problems.append(Requeued(grade_id, before.score, notebook, verified).describe())
                left_now = Mark(Owner.REQUEUED, before.score, True, checksum)
            else:  # it stands, as the person left it
                grade.needs_manual_grade = before.flagged
                left_now = Mark(Owner.PERSON, before.score, before.flagged, checksum)
        else:
            if verified != notebook:
                found.append(Disagreement(grade_id, notebook, verified, verdict.reason))
            grade.manual_score = verified
            grade.needs_manual_grade = verified != notebook
            left_now = Mark(Owner.GRADER, verified, verified != notebook, checksum)
        decisions.write_mark(gb, assignment, student, notebook_name, grade_id, left_now)
    return found
