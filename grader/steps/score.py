"""Score: the verified result becomes the grade; disagreements with the notebook are flagged.

nbgrader keeps the notebook's own result as each grade's ``auto_score``; the verified points go
into ``manual_score``, which nbgrader's totals, formgrader, feedback and export already prefer.
"""
from nbgrader.api import Gradebook, MissingEntry


def record_verified(course, assignment, verifications):
    """Write verified points to the gradebook; return {student: [disagreement notes]}."""
    disagreements = {}
    course_id = course.config().CourseDirectory.course_id
    with Gradebook(course.db_url, course_id) as gb:
        for student, outcome in verifications.items():
            notes = []
            for grade_id, verdict in outcome.verdicts.items():
                try:
                    grade = _find_grade(gb, assignment, student, grade_id)
                except MissingEntry:
                    continue
                verified = grade.max_score if verdict.passed else 0.0
                notebook = grade.auto_score or 0.0
                if verified != notebook:
                    why = "passed in the notebook, failed verification" if notebook > verified \
                        else "failed in the notebook, passed verification"
                    notes.append(f"{grade_id}: {why}" + (f" ({verdict.reason})" if verdict.reason else ""))
                grade.manual_score = verified
                grade.needs_manual_grade = False  # nbgrader re-flags grades that have a manual score
            gb.db.commit()
            if notes:
                disagreements[student] = notes
    return disagreements


def _find_grade(gb, assignment, student, grade_id):
    for notebook in gb.find_assignment(assignment).notebooks:
        if grade_id in {cell.name for cell in notebook.grade_cells}:
            return gb.find_grade(grade_id, notebook.name, assignment, student)
    raise MissingEntry()
