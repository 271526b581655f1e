"""A small hostile class graded end to end (``batch.grade``, sandbox on): backwards that borrow
torch's derivatives under spellings a name list misses lose the exercise and are flagged
``capability_used`` for a person; honest students (one with idioms beside the solution) keep
full marks and no flag.

Each attacker changes one answer cell; the rest of the notebook is the solution, so the points
it deserves are the total less that exercise's.
"""
import nbformat
import pytest

from grader import batch
from grader.course import Course, GradeOptions
from grader.demo import simulate
from test_capabilities import BOOK_SOFTMAX, HONEST_A1, LOG_SOFTMAX_KERNEL, VJP_HELPER, A2_KERNELS, function, body

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

NOTEBOOKS = {"a1_backprop": "backprop", "a2_layers": "layers"}
FLAGGED = {"manual_review", "possible_tampering", "capability_used", "code_review"}  # both lines see it

A1_HELPER_MUL = '''
def helper(ctx, grad_output):
    x, y = ctx.saved_tensors
    with torch.no_grad():
        return grad_output * y, grad_output * x

class Mul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, i, j):
        ctx.save_for_backward(i, j)
        return i * j

    backward = staticmethod(helper)
'''
RUNPY_SQUARE = function(
    "Square", body("x, = inputs", "ctx.save_for_backward(x)", "return x ** 2"),
    body("return runpy.run_path(PATH, init_globals={'ctx': ctx, 'g': grad_output})['out']"),
    preamble="import runpy, tempfile\nPATH = tempfile.mkstemp(suffix='.py')[1]\n"
             "with open(PATH, 'w') as file:\n"
             "    file.write('import torch\\nx, = ctx.saved_tensors\\nwith torch.enable_grad():\\n'\n"
             "               '    u = x.detach().requires_grad_()\\n'\n"
             "               '    out = torch.autograd.grad(u ** 2, u, g)[0]\\n')")
TIMEIT_AFFINE = function(
    "Affine", body("x, W, b = inputs", "ctx.save_for_backward(x, W, b)", "return x @ W + b"),
    body("scope = {'ctx': ctx, 'g': grad_output, 'torch': torch, 'out': []}",
         "timeit.timeit(STMT, number=1, globals=scope)", "return scope['out'][0]"),
    preamble="import timeit\nSTMT = ('x, W, b = (v.detach().requires_grad_() for v in ctx.saved_tensors)\\n'\n"
             "        'with torch.enable_grad():\\n'\n"
             "        '    out.append(torch.autograd.grad(x @ W + b, (x, W, b), g))\\n')")
HONEST_SOFTMAX = BOOK_SOFTMAX.replace("dx[torch.arange(n), t.argmax(dim=1)] -= 1",
                                      "rows = torch.arange(n)\n        dx[rows, t.argmax(dim=1)] -= 1")


def plan():
    """{assignment: {student: ({answer cell: source}, expected points, expected flags)}}."""
    return {
        "a1_backprop": {
            "honest_1": ({}, 12, set()),
            "honest_2": ({"square": HONEST_A1["square"], "mul": A1_HELPER_MUL}, 12, set()),
            "func_vjp_helper": ({"add": VJP_HELPER}, 10, FLAGGED),
            "runpy_file": ({"square": RUNPY_SQUARE}, 10, FLAGGED),
        },
        "a2_layers": {
            "honest_1": ({}, 10, set()),
            "honest_2": ({"softmax_with_loss": HONEST_SOFTMAX}, 10, set()),
            "threshold_kernel": ({"relu": A2_KERNELS["relu"][2]}, 8, FLAGGED),
            "sigmoid_kernel": ({"sigmoid": A2_KERNELS["sigmoid"][2]}, 8, FLAGGED),
            "log_softmax_kernel": ({"softmax_with_loss": LOG_SOFTMAX_KERNEL}, 7, FLAGGED),
            "timeit_autograd": ({"affine": TIMEIT_AFFINE}, 7, FLAGGED),
        },
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = Course().copy_to(tmp_path_factory.mktemp("capabilities") / "course")
    results = {}
    for assignment, students in plan().items():
        course.nbgrader("generate_assignment", assignment, "--force")
        solution = course.solutions / assignment / f"{NOTEBOOKS[assignment]}.ipynb"
        answers = simulate.solution_answers(solution)
        for student, (changes, _, _) in students.items():
            folder = course.submitted / student / assignment
            folder.mkdir(parents=True)
            release = course.release / assignment / f"{NOTEBOOKS[assignment]}.ipynb"
            nbformat.write(simulate.build_submission(release, dict(answers, **changes)),
                           folder / release.name)
        results[assignment] = batch.grade(course, assignment, GradeOptions(
            jobs=2, cell_timeout=120, notebook_timeout=600, verify_timeout=180))
    return results


CASES = [(assignment, student) for assignment, students in plan().items() for student in students]


@pytest.mark.parametrize("assignment,student", CASES)
def test_each_student_gets_exactly_their_points_and_flags(graded, assignment, student):
    result = graded[assignment]
    row = {r["student"]: r for r in result.rows}[student]
    _, points, flags = plan()[assignment][student]
    got = set(filter(None, row["flags"].split(";")))
    assert (sum(row[test] for test in result.tests), got) == (points, flags), row["notes"]
    if "capability_used" in flags:
        assert "not verified: torch's derivatives used by the student's code (" in row["notes"]
