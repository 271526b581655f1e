"""No honest student flagged: what the course teaches and what ordinary students write is clean.

Each idiom is an answer cell a correct student might write. Every one is scanned inside the real
notebook (the release's cells bind ``torch``, ``plt``, ``check_function`` ... as they do for a
student) and must be clean; a representative set is graded end to end in the sandbox and must
get full marks with no flag at all.
"""
import nbformat
import pytest

from grader import batch
from grader.course import REPO_ROOT, GradeOptions
from grader.demo import simulate
from grader.steps.scan import scan_notebook

A1, A2, A3 = "a1_backprop", "a2_layers", "a3_two_layer_net"
NOTEBOOKS = {A1: "backprop.ipynb", A2: "layers.ipynb", A3: "two_layer_net.ipynb"}
RELEASE = {a: REPO_ROOT / "notebooks" / a / name for a, name in NOTEBOOKS.items()}
SOLUTIONS = {a: REPO_ROOT / "solutions" / a / name for a, name in NOTEBOOKS.items()}
RIGHT_MUL = "return grad_output * y, grad_output * x"


def correct(assignment, grade_id):
    return simulate.solution_answers(SOLUTIONS[assignment])[grade_id]


def mul_backward(*lines):
    """The correct Mul with its backward's return line replaced by ``lines`` (8 spaces in)."""
    return simulate.replace_line(correct(A1, "mul"), RIGHT_MUL, "\n        ".join(lines))


FUNCTION_IMPORTED = correct(A1, "mul").replace("class Mul(torch.autograd.Function):",
                                              "from torch.autograd import Function\n\n\nclass Mul(Function):")
GRADCHECK_SELF_TEST = correct(A1, "mul") + (
    "\n\nfrom torch.autograd import gradcheck\n"
    "a = torch.randn(3, dtype=torch.float64, requires_grad=True)\n"
    "b = torch.randn(3, dtype=torch.float64, requires_grad=True)\n"
    "print('gradcheck:', gradcheck(Mul.apply, (a, b)))")
KOREAN_FONT = ("import matplotlib.pyplot as plt\nplt.rcParams['font.family'] = 'Noto Sans CJK KR'\n"
               "plt.rcParams['axes.unicode_minus'] = False\n\n" + correct(A1, "mul"))
WINDOWS_FIX = "import os\nos.environ['KMP_DUPLICATE_LIB_OK'] = 'TRUE'\n\n" + correct(A1, "mul")
TIMING = correct(A1, "mul") + (
    "\n\nx, y = torch.tensor(2.0), torch.tensor(3.0)\n%time z = Mul.apply(x, y)\n"
    "%timeit -n 1 -r 1 Mul.apply(x, y)\nt = %timeit -o -n 1 -r 1 Mul.apply(x, y)")
CELL_TIMING = "%%time\n" + correct(A1, "mul")
GRAD_OFF = correct(A1, "mul") + (
    "\n\nwith torch.inference_mode():\n    print(Mul.apply(torch.tensor(2.0), torch.tensor(3.0)))\n"
    "with torch.no_grad():\n    print(Mul.apply(torch.tensor(2.0), torch.tensor(3.0)))\n"
    "with torch.set_grad_enabled(False):\n    pass")
HELPER_AT_MODULE_LEVEL = ("def mul_grads(grad_output, x, y):\n"
                          "    \"\"\"d(xy)/dx = y, d(xy)/dy = x, times upstream.\"\"\"\n"
                          "    return grad_output * y, grad_output * x\n\n\n"
                          + mul_backward("return mul_grads(grad_output, x, y)"))
TENSOR_METHODS = mul_backward(
    "assert grad_output is not None, 'upstream gradient / 상류 기울기'",
    "g = grad_output.clone()",
    "gx = torch.where(torch.isnan(x.detach()), g * y, g * y)",
    "print(f'backward: {g.shape} -> {gx.shape}') if False else None",
    "return gx, g * x")
SEEDED_NUMPY = ("%matplotlib inline\nimport numpy as np\ntorch.manual_seed(0)\nnp.random.seed(0)\n\n"
                + correct(A1, "mul"))

# assignment, grade id, answer: each a clean scan
IDIOMS = {
    "function_imported": (A1, "mul", FUNCTION_IMPORTED),
    "gradcheck_self_test": (A1, "mul", GRADCHECK_SELF_TEST),
    "korean_font": (A1, "mul", KOREAN_FONT),
    "windows_fix": (A1, "mul", WINDOWS_FIX),
    "timing_magics": (A1, "mul", TIMING),
    "cell_timing_magic": (A1, "mul", CELL_TIMING),
    "inference_mode_and_no_grad": (A1, "mul", GRAD_OFF),
    "helper_at_module_level": (A1, "mul", HELPER_AT_MODULE_LEVEL),
    "tensor_methods_and_assert": (A1, "mul", TENSOR_METHODS),
    "numpy_seed_matplotlib_inline": (A1, "mul", SEEDED_NUMPY),
    "book_indexing": (A2, "softmax_with_loss", simulate.replace_line(
        correct(A2, "softmax_with_loss"), "dx = grad_output * (y - t) / y.shape[0]",
        "n = y.shape[0]\n        dx = y.clone()\n        dx[torch.arange(n), t.argmax(dim=1)] -= 1\n"
        "        dx = grad_output * dx / n")),
    "mark_non_differentiable": (A2, "relu", correct(A2, "relu") + (
        "\n\nclass ArgMax(torch.autograd.Function):\n    @staticmethod\n    def forward(ctx, x):\n"
        "        index = x.argmax()\n        ctx.mark_non_differentiable(index)\n        return index\n\n"
        "    @staticmethod\n    def backward(ctx, grad_output):\n        return None")),
    "saved_tensors_and_setup_context": (A1, "mul", (
        "class Mul(torch.autograd.Function):\n    @staticmethod\n    def forward(x, y):\n        return x * y\n\n"
        "    @staticmethod\n    def setup_context(ctx, inputs, output):\n        ctx.save_for_backward(*inputs)\n\n"
        "    @staticmethod\n    def backward(ctx, grad_output):\n        x, y = ctx.saved_tensors\n"
        "        return grad_output * y, grad_output * x")),
    "autograd_as_the_book_teaches_outside_backward": (A1, "mul", correct(A1, "mul") + (
        "\n\nx = torch.tensor(2.0, requires_grad=True)\ny = torch.tensor(3.0, requires_grad=True)\n"
        "z = (x + y) ** 2\nz.backward()\nprint(x.grad, torch.autograd.grad((x * y), x)[0])")),
    "layer_calls_its_own_backward": (A1, "mul", correct(A1, "mul") + (
        "\n\nclass Net:\n    def __init__(self, layers):\n        self.layers = layers\n\n"
        "    def backward(self, dout):\n        for layer in reversed(self.layers):\n"
        "            dout = layer.backward(dout)\n        return dout")),
    "helper_named_grad": (A1, "mul", (
        "def grad(g, other):\n    return g * other\n\n\n"
        + mul_backward("return grad(grad_output, y), grad(grad_output, x)"))),
    "inline_figure_config": (A1, "mul", "%config InlineBackend.figure_format = 'retina'\n" + correct(A1, "mul")),
    "local_names_like_the_nets_methods": (A3, "layers", simulate.replace_line(
        correct(A3, "layers"), "return grad_output * (y - t) / y.shape[0], None",
        "gradient = grad_output * (y - t)\n        loss = y.shape[0]\n        return gradient / loss, None")),
    "rebinding_own_names_and_shadowing": (A1, "mul", correct(A1, "mul") + (
        "\n\ncode = 'Mul'\ntypes = [torch.float32]\nsignal = torch.ones(3)\nprint(code, types, signal)")),
}

# graded end to end in the sandbox: full marks, no flag (the six idioms that were flagged, and more)
GRADED = ["function_imported", "gradcheck_self_test", "korean_font", "windows_fix", "timing_magics",
          "inference_mode_and_no_grad", "helper_at_module_level", "tensor_methods_and_assert"]


@pytest.mark.parametrize("name", sorted(IDIOMS))
def test_each_honest_idiom_scans_clean(tmp_path, name):
    assignment, grade_id, source = IDIOMS[name]
    nb = simulate.build_submission(RELEASE[assignment], {grade_id: source})
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert scan_notebook(path) == []


@pytest.fixture(scope="module")
def graded(tmp_path_factory, a1_generated):
    course = a1_generated(tmp_path_factory.mktemp("honest") / "course")
    answers = simulate.solution_answers(course.solutions / A1 / "backprop.ipynb")
    for student in GRADED:
        folder = course.submitted / student / A1
        folder.mkdir(parents=True)
        nb = simulate.build_submission(course.release / A1 / "backprop.ipynb", dict(answers, mul=IDIOMS[student][2]))
        nbformat.write(nb, folder / "backprop.ipynb")
    return batch.grade(course, A1, GradeOptions(jobs=2, cell_timeout=30, notebook_timeout=120, verify_timeout=30))


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.parametrize("student", GRADED)
def test_honest_students_get_full_marks_and_no_flag(graded, student):
    row = {r["student"]: r for r in graded.rows}[student]
    assert (row["total"], row["max"], row["flags"]) == (12, 12, ""), row["notes"]
