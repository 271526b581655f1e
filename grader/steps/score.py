"""Score: the verified result becomes the grade; where it differs from the notebook's, a person decides.

nbgrader keeps the notebook's own result as each grade's ``auto_score``; the verified points go
into ``manual_score``, which nbgrader's totals, formgrader, feedback and export already prefer.
A cell where the two disagree, in either direction, keeps both and is marked for manual grading
(formgrader lists it); the student's row goes to manual review with both results.
"""
from nbgrader.api import Gradebook, MissingEntry

from ..outcome import Disagreement


def record_verified(course, assignment, outcomes):
    """Write each verified outcome's points to the gradebook; fill its ``disagreements``.

    One gradebook session for the class; a student whose grades cannot be written gets a problem
    (manual review) and nothing of theirs is half-written: the others go on.
    """
    with Gradebook(course.db_url, course.course_id) as gb:
        grade_cells = {cell.name: notebook.name for notebook in gb.find_assignment(assignment).notebooks
                       for cell in notebook.grade_cells}
        for outcome in outcomes:
            try:
                found = _record(gb, grade_cells, assignment, outcome)
                gb.db.commit()
            except Exception as error:  # this student only
                gb.db.rollback()
                outcome.problems.append(f"score failed: {type(error).__name__}: {str(error)[:300]}")
                continue
            outcome.disagreements += found


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
