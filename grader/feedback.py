"""Feedback HTML that shows scores, visible test output and hidden tests' failure messages only.

Stock ``nbgrader generate_feedback`` renders the autograded notebook as it is, hidden test source
included (nbgrader #917). ``RedactHiddenTests`` runs first in its preprocessor list: it strips the
hidden part of each test cell's source (nbgrader's own ``ClearHiddenTests``), drops what the
hidden part printed, and reduces a hidden failure to its message, without the traceback that
would quote the hidden source.
"""
from nbformat.v4 import new_output

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

from .execute import HIDDEN_OUTPUT

MAX_MESSAGE = 500
HIDDEN_NOTE = "# (숨겨진 검사는 채점에만 쓰입니다 / hidden tests are run by the grader only)"


class RedactHiddenTests(ClearHiddenTests):
    def preprocess_cell(self, cell, resources, index):
        if not utils.is_grade(cell) or cell.cell_type != "code":
            return cell, resources
        had_hidden = self._remove_hidden_test_region(cell)
        outputs = []
        for output in cell.get("outputs", []):
            if not output.get("metadata", {}).get(HIDDEN_OUTPUT):
                outputs.append(output)
            elif output.output_type == "error":
                message = f"{output.ename}: {output.evalue}"[:MAX_MESSAGE]
                outputs.append(new_output("error", ename=output.ename,
                                          evalue=output.evalue[:MAX_MESSAGE], traceback=[message]))
        cell.outputs = outputs
        if had_hidden:
            cell.source = cell.source.rstrip() + "\n" + HIDDEN_NOTE
        return cell, resources


def generate(course, assignment, students):
    """Write grader/feedback/<student>/<assignment>/*.html; return {student: error} for failures."""
    api = course.api(GenerateFeedback={"preprocessors": [
        "grader.feedback.RedactHiddenTests", "nbgrader.preprocessors.GetGrades",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]})
    errors = {}
    for student in students:
        result = api.generate_feedback(assignment, student, force=True)
        if not result.get("success"):
            errors[student] = result.get("error") or "feedback failed"
    return errors
