"""Simulated students: submissions built from the release with known answers.

An answer is the source of a solution cell. ``solution_answers`` takes the instructor's correct
answers from the source notebook; a student is a dict of grade_id -> answer source, where a
missing grade_id leaves the release's blank in place.
"""
import json
import re

import nbformat

SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", re.MULTILINE)

# The source notebook's Mul.backward: ignores grad_output (right only for all-ones upstream).
SOURCE_MUL_BACKWARD = "return y, x"
SWAPPED_MUL_BACKWARD = "return grad_output * x, grad_output * y"


def solution_answers(solution_path):
    """grade_id -> the solution cell's source without the nbgrader markers."""
    nb = nbformat.read(solution_path, as_version=4)
    return {cell.metadata.nbgrader["grade_id"]: SOLUTION_MARKERS.sub("", cell.source)
            for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("solution")}


def replace_line(source, old_line, new_line):
    """The answer with its one line ``old_line`` (stripped) replaced, indentation kept."""
    lines = source.splitlines()
    hits = [i for i, line in enumerate(lines) if line.strip() == old_line]
    if len(hits) != 1:
        raise ValueError(f"expected one line {old_line!r} in answer, found {len(hits)}")
    indent = lines[hits[0]][: len(lines[hits[0]]) - len(lines[hits[0]].lstrip())]
    lines[hits[0]] = indent + new_line
    return "\n".join(lines)


def build_submission(release_path, answers):
    """The release notebook with the given answer cells filled in."""
    nb = nbformat.read(release_path, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


# --- copying pairs (the similarity report must rank them first) ---------------------------------

# Two students' own ways of writing answers: grade id -> (the solution's line, their lines).
OWN_STYLE = {
    "square": ("return grad_output * 2 * t", ["local_slope = t + t  # d(t^2)/dt", "upstream = grad_output",
                                              "return upstream * local_slope"]),
    "add": ("return grad_output, grad_output", ["left_grad = grad_output.clone()  # 1 * upstream",
                                                "right_grad = grad_output.clone()", "return left_grad, right_grad"]),
    "mul": ("return grad_output * y, grad_output * x", ["grad_first = torch.mul(grad_output, y)  # the other input",
                                                        "grad_second = torch.mul(grad_output, x)",
                                                        "return grad_first, grad_second"]),
    "fruit_shopping": ('return {"apple_price": apple_price, "tangerine_price": tangerine_price,',
                       ["nodes = dict(apple_price=apple_price, tangerine_price=tangerine_price)",
                        "nodes.update(price=price, result=result)", "return nodes"]),
}
BUGGY_STYLE = {  # with the source notebook's Mul bug: grad_output ignored
    "square": ("return grad_output * 2 * t", ["twos = torch.full_like(t, 2.0)", "slope_here = twos * t",
                                              "return slope_here * grad_output"]),
    "mul": ("return grad_output * y, grad_output * x", ["dx_local = y  # d(xy)/dx", "dy_local = x  # d(xy)/dy",
                                                        "return dx_local, dy_local"]),
}
# A classmate's copy: the same code with other names and comments.
COPIER_RENAMES = {"local_slope": "slope", "upstream": "g", "left_grad": "da", "right_grad": "db",
                  "grad_first": "gx", "grad_second": "gy", "nodes": "out", "twos": "k", "slope_here": "s",
                  "dx_local": "a", "dy_local": "b", "# d(t^2)/dt": "# 2t", "# 1 * g": "", "# the other input": "",
                  "# d(xy)/dx": "# local"}


def own_style(correct, style):
    """``correct`` with each answer of ``style`` written the student's own way."""
    answers = dict(correct)
    for grade_id, (line, lines) in style.items():
        indent = next(text[:len(text) - len(text.lstrip())] for text in correct[grade_id].splitlines()
                      if text.strip() == line)
        answers[grade_id] = replace_line(correct[grade_id], line, ("\n" + indent).join(lines))
    if "fruit_shopping" in style:  # the solution's return took two lines
        answers["fruit_shopping"] = answers["fruit_shopping"].replace(
            '\n            "price": price, "result": result}', "")
    return answers


def copied(answers):
    """A classmate's copy of ``answers``: every name and comment of COPIER_RENAMES changed."""
    def rename(source):
        for old, new in COPIER_RENAMES.items():
            source = re.sub(re.escape(old) + (r"\b" if old[-1].isalnum() else ""), new, source)
        return source
    return {grade_id: rename(source) for grade_id, source in answers.items()}


# Planted for the class report: kind -> {grade id: mistake}; the copying pairs, by kind.
PLANTED_MISTAKES = {"source_mul": {"test_mul": "ignored grad_output"}, "swapped": {"test_mul": "swapped operands"},
                    "copied_from_buggy": {"test_mul": "ignored grad_output"},
                    "copier_buggy": {"test_mul": "ignored grad_output"}}
PLANTED_COPIES = [("copied_from", "copier"), ("copied_from_buggy", "copier_buggy")]


# --- a simulated class for the demo, the benchmark and the end-to-end tests -------------------

def _mangle(nb, how):
    """Damage a notebook the way students do; returns the notebook (or raw bytes for non-notebooks)."""
    cells = nb.cells
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in cells]
    if how == "deleted":
        del cells[ids.index("add")]
    elif how == "duplicated":
        i = ids.index("mul")
        blank = nbformat.from_dict(json.loads(json.dumps(cells[i])))
        blank.source = "# 처음 시도 / first try\nclass Mul(torch.autograd.Function):\n    pass"
        cells.insert(i, blank)
    elif how == "added":
        cells.insert(3, nbformat.v4.new_code_cell("print('my notes')"))
        cells.append(nbformat.v4.new_markdown_cell("제 메모 / my notes"))
    elif how == "moved":
        i, j = ids.index("square"), ids.index("fruit_shopping")
        cells[i], cells[j] = cells[j], cells[i]
    elif how == "markdown":
        i = ids.index("mul")
        cells[i] = nbformat.v4.new_markdown_cell(cells[i].source, metadata=cells[i].metadata)
    elif how == "stripped":
        for cell in cells:
            cell.metadata = {}
    elif how == "kernel":
        nb.metadata.kernelspec = {"name": "conda-env-ml-py", "display_name": "ML", "language": "python"}
    elif how == "nbformat3":
        return nbformat.writes(nbformat.convert(nb, 3), version=3).encode()
    return nb


RAW_FILES = {"invalid_json": b'{"cells": [ {"cell_type": "code", ', "empty": b"",
             "binary": bytes(range(256)) * 8}


def simulated_class(solution_path, size=None):
    """[(kind, answers or raw bytes, expected total or None for manual review)].

    The plan is the 32 students below; ``size`` repeats it (or cuts it) to that many students,
    each with an id of their own (``write_lms_download`` numbers them).

    Totals are for the first assignment (12 points: square 2, add 2, mul 3, apple 2, fruit 3); the
    graph exercises are graded with reference Mul and Add nodes, so a wrong Mul costs only Mul.
    """
    correct = solution_answers(solution_path)
    right_mul = "return grad_output * y, grad_output * x"
    source_mul = dict(correct, mul=replace_line(correct["mul"], right_mul, SOURCE_MUL_BACKWARD))
    swapped = dict(correct, mul=replace_line(correct["mul"], right_mul, SWAPPED_MUL_BACKWARD))
    other_style = dict(correct, square=replace_line(
        correct["square"], "return grad_output * 2 * t", "return 2.0 * t * grad_output"))
    partly = {k: correct[k] for k in ("square", "add")}
    looping = dict(correct, mul="while True:\n    pass")
    crashing = dict(correct, add="import os\nos._exit(1)")
    mine, mine_buggy = own_style(correct, OWN_STYLE), own_style(correct, BUGGY_STYLE)
    plan = [("correct", correct, 12)] * 4 + [("copied_from", mine, 12), ("copier", copied(mine), 12)]
    plan += [("other_style", other_style, 12)] * 2
    plan += [("source_mul", source_mul, 9), ("copied_from_buggy", mine_buggy, 9),  # a wrong Mul costs Mul only
             ("copier_buggy", copied(mine_buggy), 9)] + [("blank", {}, 0)] * 2
    plan += [("partly_done", partly, 4)] * 3 + [("swapped", swapped, 9)] * 2
    plan += [("infinite_loop", looping, 4)]
    plan += [("kernel_crash", crashing, None)]  # 2 points, but its answer imports os: a person looks
    mangled = {"deleted": 10, "duplicated": 12, "added": 12, "moved": 12, "markdown": 12,
               "stripped": 12, "kernel": 12, "nbformat3": 12, "renamed": 12}
    plan += [(f"mangled_{how}", (correct, how), total) for how, total in mangled.items()]
    plan += [(f"not_a_notebook_{how}", raw, None) for how, raw in RAW_FILES.items()]
    size = size or len(plan)
    return (plan * -(-size // len(plan)))[:size]


def write_lms_download(folder, release_path, plan):
    """Write each planned submission as Canvas names it; returns {student id: (kind, total)}."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for number, (kind, answers, total) in enumerate(plan):
        user_id = str(10001 + number)
        file_name = release_path.stem
        if isinstance(answers, bytes):
            content = answers
        else:
            how = None
            if isinstance(answers, tuple):
                answers, how = answers
            nb = build_submission(release_path, answers)
            content = _mangle(nb, how) if how else nb
            if how == "renamed":
                file_name = f"{release_path.stem} (1)"
            if not isinstance(content, bytes):
                content = nbformat.writes(content).encode()
        name = f"student{kind.replace('_', '')}{number}_{user_id}_{50000 + number}_{file_name}.ipynb"
        (folder / name).write_bytes(content)
        expected[user_id] = (kind, total)
    return expected
