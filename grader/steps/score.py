"""Score: the verified result becomes the grade; where it differs from the notebook's, a person decides.

nbgrader keeps the notebook's own result as each grade's ``auto_score``; the verified points go
into ``manual_score``, which nbgrader's totals, formgrader, feedback and export already prefer.
A cell where the two disagree, in either direction, keeps both and is marked for manual grading
(formgrader lists it); the student's row goes to manual review with both results.
"""
from contextlib import contextmanager

from nbgrader.api import Gradebook, MissingEntry

from ..outcome import Disagreement
from . import autograde


@contextmanager
def recorder(course, assignment):
    """``record(outcome)``: write one verified outcome's points to the gradebook, fill its
    ``disagreements``; one gradebook session for the run, each student's write under the
    run's gradebook lock (SQLite: the workers record pass 2 meanwhile).

    A student whose grades cannot be written gets a problem (manual review) and nothing of
    theirs is half-written: the others go on.
    """
    with Gradebook(course.db_url, course.course_id) as gb:
        grade_cells = {cell.name: notebook.name for notebook in gb.find_assignment(assignment).notebooks
                       for cell in notebook.grade_cells}
        gb.db.commit()  # no read left open while the workers write

        def record(outcome):
            with autograde.gradebook_lock(course):
                try:
                    found = _record(gb, grade_cells, assignment, outcome)
                    gb.db.commit()
                except Exception as error:  # this student only
                    gb.db.rollback()
                    outcome.problems.append(f"score failed: {type(error).__name__}: {str(error)[:300]}")
                    return
            outcome.disagreements += found
        yield record


def _record(gb, grade_cells, assignment, outcome):
    """Set one student's verified points; returns the Disagreements found."""
    found = []
    for grade_id, verdict in outcome.verdicts.items():
        if grade_id not in grade_cells:
            continue
        try:
            grade = gb.find_grade(grade_id, grade_cells[grade_id], assignment, outcome.student)
        except MissingEntry:
            continue
        verified = grade.max_score if verdict.passed else 0.0
        notebook = grade.auto_score or 0.0
        if verified != notebook:
            found.append(Disagreement(grade_id, notebook, verified, verdict.reason))
        grade.manual_score = verified
        grade.needs_manual_grade = verified != notebook
    return found
