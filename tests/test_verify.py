"""The trusted verifier on its own: solutions pass, each kind of wrong answer fails with a reason."""
import nbformat
import pytest

from grader.demo import simulate
from grader.steps import verify
from grader.course import Course

pytestmark = pytest.mark.sandbox

COURSE = Course()
NOTEBOOKS = {"a1_backprop": "backprop", "a2_layers": "layers", "a3_two_layer_net": "two_layer_net"}


def notebook_with(tmp_path, assignment, changes):
    """The solution notebook with answer cells changed: {grade_id: (old line, new line)}."""
    path = COURSE.solutions / assignment / f"{NOTEBOOKS[assignment]}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in changes:
            cell.source = simulate.replace_line(cell.source, *changes[grade_id])
    out = tmp_path / path.name
    nbformat.write(nb, out)
    return out


def verdicts(assignment, path):
    found = verify.verify_notebook(verify.spec_for(assignment), path, seed=11, timeout=60)
    return {grade_id: (v.passed, v.reason) for grade_id, v in found.items()}


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_solutions_pass_verification(assignment):
    path = COURSE.solutions / assignment / f"{NOTEBOOKS[assignment]}.ipynb"
    got = verdicts(assignment, path)
    assert got and all(passed for passed, _ in got.values()), got


def test_a1_mistakes_fail_only_what_they_break(tmp_path):
    path = notebook_with(tmp_path, "a1_backprop", {
        "mul": ("return grad_output * y, grad_output * x", "return y, x"),
        "square": ("return grad_output * 2 * t", "return grad_output * 2 * t.detach().clone().fill_(1.5)"),
    })
    got = verdicts("a1_backprop", path)
    assert got["test_add"] == (True, "")
    assert not got["test_square"][0] and "wrong gradient for input 0" in got["test_square"][1]
    assert not got["test_mul"][0] and not got["test_apple_shopping"][0] and not got["test_fruit_shopping"][0]


def test_a1_function_without_backward_and_graph_from_torch_ops_fail(tmp_path):
    path = notebook_with(tmp_path, "a1_backprop", {
        "add": ("return grad_output, grad_output", "raise RuntimeError('no backward here')"),
        "apple_shopping": ("price = Mul.apply(apple, num)", "price = apple * num"),
    })
    got = verdicts("a1_backprop", path)
    assert got["test_add"] == (False, "the student's code raised RuntimeError: no backward here")
    assert not got["test_apple_shopping"][0] and "graph built from" in got["test_apple_shopping"][1]


def test_a2_in_place_relu_and_unsummed_bias_fail(tmp_path):
    path = notebook_with(tmp_path, "a2_layers", {
        "relu": ("return grad_output.masked_fill(mask, 0)", "grad_output[mask] = 0; return grad_output"),
        "affine": ("db = grad_output.sum(dim=0)", "db = grad_output"),
    })
    got = verdicts("a2_layers", path)
    assert got["test_relu"] == (False, "backward changed grad_output in place")
    assert got["test_affine"] == (False, "wrong gradient for input 2")
    assert got["test_sigmoid"] == (True, "") and got["test_softmax_with_loss"] == (True, "")


def test_a_crash_stops_only_the_checks_after_it(tmp_path):
    path = notebook_with(tmp_path, "a1_backprop", {
        "mul": ("return grad_output * y, grad_output * x", "import os; os._exit(3)")})
    got = verdicts("a1_backprop", path)
    assert got["test_square"][0] and got["test_add"][0]
    assert not got["test_mul"][0] and "stopped" in got["test_mul"][1]
