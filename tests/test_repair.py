"""Repair on hand-built notebooks: answers carried over by id or by name, everything else rebuilt."""
import json

import nbformat
import pytest

from grader.steps.bounded import Bounds
from grader.steps.repair import NotANotebook, read_submission, repair, repair_file
from notebooks import answer, release, write

TWICE = "def twice(x):\n    return 2 * x"
SQUARE = "class Square:\n    def of(self, x):\n        return x * x"


def student(**answers):
    nb = release()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def sources(nb):
    return {c.metadata.nbgrader["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata}


def test_an_untouched_submission_needs_no_repair():
    fixed = repair(student(twice=TWICE, sq=SQUARE), release(), "n.ipynb", "n.ipynb")
    assert fixed.repairs == [] and sources(fixed.notebook)["twice"] == TWICE


def test_tests_come_from_the_release_whatever_the_student_wrote():
    nb = student(twice=TWICE)
    nb.cells[2].source = "pass  # my own test"
    fixed = repair(nb, release(), "n.ipynb", "n.ipynb")
    assert sources(fixed.notebook)["test_twice"] == sources(release())["test_twice"]


def test_deleted_duplicated_moved_and_added_cells():
    nb = student(twice=TWICE, sq=SQUARE)
    first_try = answer("sq", "class Square:\n    pass")
    nb.cells.insert(3, first_try)                              # duplicated: the changed one wins
    nb.cells.append(nbformat.v4.new_code_cell("print('mine')"))  # added
    del nb.cells[1]                                            # deleted
    fixed = repair(nb, release(), "n.ipynb", "n.ipynb")
    assert sources(fixed.notebook)["twice"] == sources(release())["twice"]
    assert sources(fixed.notebook)["sq"] == SQUARE
    assert fixed.repairs == ["twice: answer cell missing, left blank", "sq: answer cell duplicated",
                             "1 added code cell(s) dropped"]


def test_an_answer_found_by_the_name_it_defines_when_metadata_was_stripped():
    nb = student(twice=TWICE, sq=SQUARE)
    for cell in nb.cells:
        cell.metadata = {}
    fixed = repair(nb, release(), "copy.ipynb", "n.ipynb")
    assert sources(fixed.notebook)["twice"] == TWICE and sources(fixed.notebook)["sq"] == SQUARE
    assert fixed.repairs == ["renamed 'copy.ipynb' -> 'n.ipynb'", "twice: answer cell content",
                             "sq: answer cell content"]


def test_a_markdown_answer_is_turned_back_into_code_and_kernels_replaced():
    nb = student(twice=TWICE)
    nb.cells[1] = nbformat.v4.new_markdown_cell(TWICE, metadata=nb.cells[1].metadata)
    nb.metadata.kernelspec = {"name": "julia", "display_name": "Julia", "language": "julia"}
    fixed = repair(nb, release(), "n.ipynb", "n.ipynb")
    assert fixed.notebook.cells[1].cell_type == "code" and sources(fixed.notebook)["twice"] == TWICE
    assert fixed.repairs == ["kernel 'julia' replaced by the release's",
                             "twice: markdown cell turned back into code"]


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty file"),
    (bytes(range(256)), "binary file"),
    (b'{"cells": [', "invalid JSON"),
    (b'{"a": 1}', "JSON without notebook cells"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    (b'{"cells": "not a list", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "malformed notebook"),
])
def test_files_that_are_not_notebooks_say_why(raw, reason):
    with pytest.raises(NotANotebook, match=reason):
        read_submission(raw)


def test_an_old_nbformat_is_read_and_upgraded():
    old = nbformat.writes(nbformat.convert(student(twice=TWICE), 3), version=3).encode()
    nb, version = read_submission(old)
    fixed = repair(nb, release(), "n.ipynb", "n.ipynb", version)
    assert version == 3 and "upgraded from nbformat 3" in fixed.repairs
    assert sources(fixed.notebook)["twice"] == TWICE


def test_a_nested_answer_survives_as_text():
    deep = json.dumps({"x": [[[[1]]]]})
    fixed = repair(student(twice=TWICE + f"\n# {deep}"), release(), "n.ipynb", "n.ipynb")
    assert deep in sources(fixed.notebook)["twice"]


def test_an_answer_too_long_to_be_one_is_left_out_for_a_person():
    fixed = repair(student(twice=TWICE + "\n#" + "x" * 300_000), release(), "n.ipynb", "n.ipynb")
    assert sources(fixed.notebook)["twice"] == sources(release())["twice"]
    assert fixed.problems == ["twice: answer cell of 300,032 characters left out / 답안 셀이 너무 큼"]


def test_too_many_cells_are_refused_before_parsing():
    nb = student(twice=TWICE)
    nb.cells += [nbformat.v4.new_raw_cell("") for _ in range(2_001)]
    with pytest.raises(NotANotebook, match="more than 2,000 cells"):
        read_submission(nbformat.writes(nb).encode())


def expensive_to_parse(path, objects):
    """A valid notebook whose metadata holds ``objects`` empty dicts: cheap bytes, costly objects."""
    nb = student(twice=TWICE, sq=SQUARE)
    nb.metadata["bulk"] = "BULK"
    raw = nbformat.writes(nb).encode()
    path.write_bytes(raw.replace(b'"BULK"', b"[" + b",".join([b"{}"] * objects) + b"]"))
    return path


def test_a_large_notebook_is_parsed_and_repaired_in_a_bounded_child(tmp_path):
    release_path = write(release(), tmp_path / "release.ipynb")
    path = expensive_to_parse(tmp_path / "big.ipynb", 400_000)  # 1.2 MB: above IN_PROCESS_BYTES
    fixed = repair_file(path, release_path, "big.ipynb")
    assert sources(fixed.notebook) == sources(student(twice=TWICE, sq=SQUARE))
    assert fixed.repairs == ["renamed 'big.ipynb' -> 'release.ipynb'"] and "bulk" not in fixed.notebook.metadata


def test_a_notebook_built_to_be_expensive_to_parse_costs_only_a_bounded_child(tmp_path):
    release_path = write(release(), tmp_path / "release.ipynb")
    path = expensive_to_parse(tmp_path / "n.ipynb", 2_800_000)  # 8 MiB: about 1.2 GB to parse
    for bounds, why in [(Bounds(seconds=120, memory_bytes=512 * 2**20), "needed more than 512 MiB"),
                        (Bounds(seconds=0.001), "took longer than 0.001 s")]:
        with pytest.raises(NotANotebook, match=f"too expensive to read \\(8.0 MiB; the reader {why}"):
            repair_file(path, release_path, "n.ipynb", bounds)
