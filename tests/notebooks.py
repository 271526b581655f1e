"""Small hand-built nbgrader notebooks for the unit tests of each step (no kernel, no sandbox)."""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def answer(grade_id, source):
    return new_code_cell(source, metadata={"nbgrader": {
        "grade": False, "solution": True, "locked": False, "grade_id": grade_id, "schema_version": 3}})


def test_cell(grade_id, source, points=1):
    return new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": grade_id, "points": points,
        "schema_version": 3}})


def release():
    """Two exercises: ``double`` (answer cell ``twice``) and ``square`` (answer cell ``sq``)."""
    nb = new_notebook(cells=[
        new_markdown_cell("# Two exercises"),
        answer("twice", "def twice(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"),
        test_cell("test_twice", "assert twice(2) == 4\n### BEGIN HIDDEN TESTS\nassert twice(3) == 6\n"
                                "### END HIDDEN TESTS"),
        answer("sq", "class Square:\n    # YOUR CODE HERE\n    raise NotImplementedError()"),
        test_cell("test_sq", "assert Square().of(3) == 9", points=2),
    ])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def write(nb, path):
    nbformat.write(nb, path)
    return path


def figures_in(path):
    """How many PNG figures an executed notebook (a solution, outputs saved) shows."""
    nb = nbformat.read(path, as_version=4)
    return sum("image/png" in output.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for output in cell.outputs)
