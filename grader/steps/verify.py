"""Verify: each graded gradient checked again outside the student's kernel. The verified result is the score.

The notebook's tests run in the student's kernel after the student's code, so a student can
monkeypatch what they call. Here the trusted process (which never runs student code) draws fresh
inputs and upstream gradients, computes the answers with torch's own autograd and judges
(``grader/specs/cases.py``); a fresh sandboxed runner (``grader/inside/verify_runner.py``) runs
the student's answer cells and, one case at a time, returns numbers over a channel the grader
owns (``verify_channel.py``). An assignment is verified when ``grader/specs/<name>.py`` exists;
its ``TESTS`` maps grade cell ids to case builders, its ``PREAMBLE`` mirrors the imports cell.

What "verified" proves: a fresh process that ran only the student's answer cells (and the spec's
preamble) returned, for each case, the numbers torch gives for inputs and upstream gradients drawn
at grading time and sent only when that case was asked: forward values, gradients with the
input's dtype and the shape the notebook requires, every node of a graph exercise. For honest
code the runner also reports how it got them (the node is the student's Function's, backward left
``grad_output`` unchanged), which catches honest mistakes.
How the numbers were made is the runner's first line of evidence, reported with each case as
``capabilities``: while the student's code answers a case, torch's derivative kernels are removed
and the autograd engine's runs and grad mode are watched, so a backward that asks torch for the
answer, under any spelling, is seen where every spelling meets (``verify_runner.py`` says
exactly what that proves). A case whose reply lists a capability is not verified, and its Verdict
carries the list as ``evidence`` (flag ``capability_used``: a person decides); a reply without a
valid list is not verified either, never read as clean. What remains a claim: the student's code
shares the runner's process, so it can patch the runner (undo its measures, forge its reports,
claim its own node); doing so needs constructs the static scan flags. What the student's code
cannot do is see a case before it is asked, see the expected answers (they never leave this
process), or make the grader accept a malformed, late, unasked or oversized reply. A
disagreement with the notebook's tests goes to a person.
"""
import importlib
from dataclasses import dataclass

import nbformat
import torch

from ..outcome import Verdict
from ..specs.replies import Malformed, capabilities
from . import verify_channel
from .mistakes import name_mistake


def spec_for(assignment):
    """The assignment's verification spec module, or None when it has none."""
    try:
        return importlib.import_module(f"grader.specs.{assignment}")
    except ModuleNotFoundError:
        return None


def _answer_cells(notebook_path):
    nb = nbformat.read(notebook_path, as_version=4)
    order, answers = [], {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = cell.source
        if meta.get("grade_id"):
            order.append(meta["grade_id"])
    return order, answers


def _plan(spec, order, answers, seed):
    """[(grade id or None, request, Case or None)]: each answer cell before the tests that follow it."""
    generator = torch.Generator().manual_seed(seed)
    plan, done = [(None, {"exec": getattr(spec, "PREAMBLE", ""), "name": "preamble"}, None)], set()
    for position, grade_id in enumerate(order):
        if grade_id in answers or grade_id not in spec.TESTS:
            continue
        for earlier in order[:position]:
            if earlier in answers and earlier not in done:
                plan.append((None, {"exec": answers[earlier], "name": earlier}, None))
                done.add(earlier)
        for build in spec.TESTS[grade_id]:
            case = build(generator)
            plan.append((grade_id, {"case": case.request}, case))
    return plan


def _reason(reply, case):
    if "error" in reply:
        return f"the student's code raised {reply['error'][:300]}"
    if "result" not in reply:
        return "malformed result: no result"
    return case.reason(reply["result"])


def _judge(reply, case):
    """(problem, evidence, mistake): why the case is not verified ('' when it is), the
    capabilities the runner saw the student's code use (evidence for a person, whatever the
    numbers), and the catalogue's name for a wrong answer (only for a well-formed reply whose
    numbers are wrong: a malformed one or a borrowed derivative is not a mistake to count)."""
    try:
        used = capabilities(reply)
    except Malformed:
        return _reason(reply, case) or "malformed reply: no list of the capabilities used", (), ""
    if used:
        return (f"not verified: torch's derivatives used by the student's code ({', '.join(used)})",
                tuple(used), "")
    problem = _reason(reply, case)
    return problem, (), name_mistake(case, reply) if problem else ""


def verify_notebook(spec, notebook_path, seed, timeout=120, sandboxed=True, helpers=None):
    """Verify one student's notebook against ``spec``; returns {grade id: Verdict}.

    helpers: the folder of the assignment's helper modules (its release folder), importable by
    the answer cells as in the notebook.
    """
    order, answers = _answer_cells(notebook_path)
    problems, broken = {}, ""  # grade id -> (its first problem, evidence); why the channel broke
    with verify_channel.runner(helpers, timeout, sandboxed) as channel:
        for grade_id, request, case in _plan(spec, order, answers, seed):
            if grade_id in problems:
                continue
            if not broken:
                try:
                    reply = channel.ask(request)
                except verify_channel.ChannelBroken as error:
                    broken = str(error)
            if case is None:
                continue
            problem, evidence, mistake = (broken, (), "") if broken else _judge(reply, case)
            if problem:
                problems[grade_id] = Verdict(False, problem, mistake, evidence)
    return {grade_id: problems.get(grade_id, Verdict(True)) for grade_id in spec.TESTS if grade_id in order}


@dataclass(frozen=True)
class Verification:
    """One student's verdicts, or why none could be had (then a person must look)."""
    verdicts: dict
    error: str = ""


def verify_student(course, assignment, student, options, seed):
    """One student's Verification (the assignment has a spec; ``seed`` is the class's); never raises."""
    verdicts = {}
    try:
        for path in sorted(course.submission(student, assignment).glob("*.ipynb")):
            verdicts.update(verify_notebook(spec_for(assignment), path, seed, timeout=options.verify_timeout,
                                            sandboxed=options.sandboxed, helpers=course.release / assignment))
    except Exception as error:  # anything at all: this student goes to a person, the rest go on
        return Verification({}, f"{type(error).__name__}: {str(error)[:300]}")
    return Verification(verdicts)
