"""Score: the verified result becomes the grade; where it differs from the notebook's, a person decides.

nbgrader keeps the notebook's own result as each grade's ``auto_score``; the verified points go
into ``manual_score``, which nbgrader's totals, formgrader, feedback and export already prefer.
A cell where the two disagree, in either direction, keeps both and is marked for manual grading
(formgrader lists it); the student's row goes to manual review with both results.
"""
from nbgrader.api import Gradebook, MissingEntry

from ..outcome import Disagreement


def record_verified(course, assignment, outcomes):
    """Write each verified outcome's points to the gradebook; fill its ``disagreements``."""
    with Gradebook(course.db_url, course.course_id) as gb:
        grade_cells = {cell.name: notebook.name for notebook in gb.find_assignment(assignment).notebooks
                       for cell in notebook.grade_cells}
        for outcome in outcomes:
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
                    outcome.disagreements.append(Disagreement(grade_id, notebook, verified, verdict.reason))
                grade.manual_score = verified
                grade.needs_manual_grade = verified != notebook
            gb.db.commit()
