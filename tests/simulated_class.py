"""Grade a few simulated students of one assignment with stock `nbgrader autograde`.

Shared by the assignment tests: submit answers built from the release, autograde, and read back
the scores and the message each failed grade cell showed the student.
"""
import shutil

import nbformat
from nbgrader.api import Gradebook

from grader.demo import simulate


def grade_class(course, assignment, notebook, students):
    """students: {student_id: {grade_id: answer}} -> {student_id: {grade cell: score}}."""
    release = course.release / assignment
    for student, answers in students.items():
        folder = course.submitted / student / assignment
        folder.mkdir(parents=True)
        for helper in release.glob("*.py"):
            shutil.copy(helper, folder)
        nbformat.write(simulate.build_submission(release / f"{notebook}.ipynb", answers),
                       folder / f"{notebook}.ipynb")
    course.nbgrader("autograde", assignment)
    with Gradebook(course.db_url, "backprop") as gb:
        return {s: {g.name: g.score for g in gb.find_submission_notebook(notebook, assignment, s).grades}
                for s in students}


def messages(course, assignment, notebook, student):
    """{grade cell: the error message it showed} for the student's autograded notebook."""
    nb = nbformat.read(course.autograded / student / assignment / f"{notebook}.ipynb", as_version=4)
    return {cell.metadata.nbgrader["grade_id"]: out.get("evalue", "")
            for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade")
            for out in cell.get("outputs", []) if out.output_type == "error"}


def answers_with(answers, grade_id, old_line, new_line):
    """The answers with one line of one answer replaced (a deliberate mistake)."""
    return dict(answers, **{grade_id: simulate.replace_line(answers[grade_id], old_line, new_line)})
