"""Feedback redaction on a hand-built graded notebook, read as the rendered page's text."""
import html
import re

from nbconvert import HTMLExporter
from nbformat.v4 import new_output

from grader.markers import HIDDEN_OUTPUT
from grader.outcome import Verdict
from grader.steps.feedback import RedactHiddenTests
from notebooks import release

HIDDEN_LINE = "assert twice(3) == 6"


def graded():
    nb = release()
    twice, test_twice = nb.cells[1], nb.cells[2]
    twice.source = "def twice(x):\n    return 2 * x\nprint('mine')"
    twice.outputs = [new_output("stream", name="stdout", text=f"smuggled\n{HIDDEN_LINE}\nmore\n")]
    chatter = new_output("stream", name="stdout", text="hidden chatter\n")
    failure = new_output("error", ename="GradientMistake", evalue="backward ignores grad_output" + "!" * 900,
                         traceback=[f"  File x, line 3\n    {HIDDEN_LINE}"])
    for output in (chatter, failure):  # as the executor marks what the hidden part printed
        output["metadata"] = {HIDDEN_OUTPUT: True}
    test_twice.outputs = [new_output("stream", name="stdout", text="visible check passed\n"), chatter, failure]
    return nb


def page(nb, student="s", **traits):
    nb, _ = RedactHiddenTests(**traits).preprocess(nb, {"nbgrader": {"student": student}})
    body, _ = HTMLExporter().from_notebook_node(nb)
    return html.unescape(re.sub(r"<[^>]*>", "", body))


def test_hidden_source_and_output_are_gone_and_the_message_stays():
    text = page(graded())
    assert "assert twice(2) == 4" in text and "visible check passed" in text
    assert HIDDEN_LINE not in text and "BEGIN HIDDEN TESTS" not in text and "hidden chatter" not in text
    assert "GradientMistake: backward ignores grad_output" in text
    assert "!" * 501 not in text  # the message is truncated
    assert "hidden test text removed" in text and "smuggled" in text and "more" in text


def test_the_verified_result_is_shown_under_its_test():
    text = page(graded(), verdicts={"s": {"test_twice": Verdict(False, "wrong gradient for input 0")}})
    assert "verified by the grader on fresh inputs: failed (wrong gradient for input 0)" in text
    assert "verified by the grader" not in page(graded(), verdicts={"other": {"test_twice": Verdict(True)}})


def test_a_submission_under_review_says_so_and_shows_no_output():
    text = page(graded(), reviews={"s": ["twice, line 3: imports gc <script>"]})
    assert text.index("A person will review this submission") < text.index("Two exercises")
    assert "twice, line 3: imports gc <script>" in text  # escaped Markdown, shown as text
    assert "smuggled" not in text and "visible check passed" not in text
    assert "GradientMistake" in text


def test_feedback_preprocessors_exist_and_run():
    from traitlets.utils.importstring import import_item
    from grader.steps.feedback import PREPROCESSORS
    for name in PREPROCESSORS:
        assert import_item(name)(enabled=True).enabled, name
    assert all(import_item(name)().enabled for name in PREPROCESSORS if not name.startswith("nbconvert."))


def test_a_cell_graded_by_hand_shows_no_verdict_as_its_score():
    from types import SimpleNamespace

    from grader.outcome import StudentOutcome
    from grader.steps import feedback
    queued = []

    class Pool:
        def submit(self, *args):
            queued.append(args)

    outcome = StudentOutcome("s", verdicts={"test_a": Verdict(False, "wrong"), "test_b": Verdict(True)},
                             graded_by_hand=["test_a"])
    feedback.submit(Pool(), SimpleNamespace(root="/course"), "a1", outcome)
    (_, _, _, student, verdicts, reviews), = queued
    assert (student, verdicts, reviews) == ("s", {"test_b": Verdict(True)}, {})
