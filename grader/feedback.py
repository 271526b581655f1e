"""Feedback HTML that shows scores, visible test output and hidden tests' failure messages only.

Stock ``nbgrader generate_feedback`` renders the autograded notebook as it is, hidden test source
included (nbgrader #917). ``RedactHiddenTests`` runs first in its preprocessor list:

- it strips the hidden part of each test cell's source (nbgrader's own ``ClearHiddenTests``);
- it drops what the hidden part printed, keeping a hidden failure's message (truncated) without
  the traceback that would quote the hidden source;
- it removes, from every output of every cell, any line that quotes a line of the hidden tests
  (student code may have captured the hidden source while it ran and printed it later);
- under each test the grader verified outside the notebook, it says what verification found:
  that result is the score, and it may differ from what the notebook showed.
"""
from nbformat.v4 import new_output
from traitlets import Dict

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

from .execute import HIDDEN_OUTPUT, split_hidden

MAX_MESSAGE = 500
MIN_QUOTED = 12  # hidden lines shorter than this (``### END``, ``)``) are too common to redact
HIDDEN_NOTE = "# (숨겨진 검사는 채점에만 쓰입니다 / hidden tests are run by the grader only)"
REDACTED = "[숨겨진 검사 내용 삭제 / hidden test text removed]"


class RedactHiddenTests(ClearHiddenTests):

    verdicts = Dict(help="{student: {grade_id: [passed, reason]}} from grader.verify").tag(config=True)

    def preprocess(self, nb, resources):
        self._verdicts = self.verdicts.get(resources["nbgrader"]["student"], {})
        self._hidden_lines = {line.strip() for cell in nb.cells if cell.cell_type == "code"
                              for line in split_hidden(cell.source)[1].splitlines()
                              if len(line.strip()) >= MIN_QUOTED}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if utils.is_grade(cell):
            if self._remove_hidden_test_region(cell):
                cell.source = cell.source.rstrip() + "\n" + HIDDEN_NOTE
            cell.outputs = [self._visible(o) for o in cell.get("outputs", [])
                            if not o.get("metadata", {}).get(HIDDEN_OUTPUT) or o.output_type == "error"]
            verdict = self._verdicts.get(cell.metadata.nbgrader.get("grade_id"))
            if verdict:
                cell.outputs.append(new_output("stream", name="stdout", text=verdict_text(*verdict)))
        for output in cell.get("outputs", []):
            self._scrub(output)
        return cell, resources

    @staticmethod
    def _visible(output):
        if not output.get("metadata", {}).get(HIDDEN_OUTPUT):
            return output
        evalue = output.evalue[:MAX_MESSAGE]
        return new_output("error", ename=output.ename, evalue=evalue,
                          traceback=[f"{output.ename}: {evalue}"])

    def _scrub(self, output):
        def clean(text):
            if isinstance(text, list):
                text = "".join(text)
            return "\n".join(REDACTED if any(h in line for h in self._hidden_lines) else line
                             for line in text.split("\n"))
        if "text" in output:
            output.text = clean(output.text)
        if output.output_type == "error":
            output.evalue = clean(output.evalue)
            output.traceback = [clean(line) for line in output.traceback]
        for mime, data in output.get("data", {}).items():
            if mime.startswith("text/") or mime in ("application/javascript",):
                output.data[mime] = clean(data)


def verdict_text(passed, reason):
    if passed:
        return "채점기 검증: 통과 / verified by the grader on fresh inputs: passed\n"
    return (f"채점기 검증: 실패 / verified by the grader on fresh inputs: failed ({reason}); "
            "이 결과가 점수입니다 / this result is the score\n")


def generate(course, assignment, students, verifications=None):
    """Write grader/feedback/<student>/<assignment>/*.html; return {student: error} for failures.

    verifications: {student: StudentVerification}, shown under each verified test.
    """
    verdicts = {student: {grade_id: [v.passed, v.reason] for grade_id, v in outcome.verdicts.items()}
                for student, outcome in (verifications or {}).items()}
    api = course.api(GenerateFeedback={"preprocessors": [
        "grader.feedback.RedactHiddenTests", "grader.inert.MakeInert", "nbgrader.preprocessors.GetGrades",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]}, RedactHiddenTests={"verdicts": verdicts})
    errors = {}
    for student in students:
        result = api.generate_feedback(assignment, student, force=True)
        if not result.get("success"):
            errors[student] = result.get("error") or "feedback failed"
    return errors
