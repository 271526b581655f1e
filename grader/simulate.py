"""Simulated students: submissions built from the release with known answers.

An answer is the source of a solution cell. ``solution_answers`` takes the instructor's correct
answers from the source notebook; a student is a dict of grade_id -> answer source, where a
missing grade_id leaves the release's blank in place.
"""
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
