"""The trusted verifier on its own: solutions and correct variants pass, each kind of wrong answer
fails with its reason, and a student who forges or sabotages the channel gets failed verdicts
(or a Verification error), never a pass, an exception out of the batch, or a hang."""
import time
from types import SimpleNamespace

import nbformat
import pytest

from grader.course import Course
from grader.demo import simulate
from grader.steps import verify, verify_channel

pytestmark = pytest.mark.sandbox

COURSE = Course()
NOTEBOOKS = {"a1_backprop": "backprop", "a2_layers": "layers", "a3_two_layer_net": "two_layer_net"}
A1_GRADES = ("test_square", "test_add", "test_mul", "test_apple_shopping", "test_fruit_shopping")


def notebook_with(tmp_path, assignment, changes, base="solutions"):
    """A notebook (the solution, or the release with ``base="release"``) with answer cells changed.

    changes: {grade_id: (old line, new line)} or {grade_id: new source} or {grade_id: callable}.
    """
    folder = COURSE.solutions if base == "solutions" else COURSE.release
    path = folder / assignment / f"{NOTEBOOKS[assignment]}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        change = changes.get(grade_id)
        if isinstance(change, tuple):
            cell.source = simulate.replace_line(cell.source, *change)
        elif callable(change):
            cell.source = change(cell.source)
        elif change is not None:
            cell.source = change
    out = tmp_path / path.name
    nbformat.write(nb, out)
    return out


def verdicts(assignment, path, timeout=30, sandboxed=True):
    found = verify.verify_notebook(verify.spec_for(assignment), path, seed=11, timeout=timeout,
                                   sandboxed=sandboxed, helpers=COURSE.release / assignment)
    return {grade_id: (v.passed, v.reason) for grade_id, v in found.items()}


def all_pass(assignment):
    return {grade_id: (True, "") for grade_id in verify.spec_for(assignment).TESTS}


# --- right answers pass -------------------------------------------------------------------------

@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_solutions_pass_verification(assignment):
    path = COURSE.solutions / assignment / f"{NOTEBOOKS[assignment]}.ipynb"
    assert verdicts(assignment, path) == all_pass(assignment)


def test_solution_passes_without_the_sandbox():
    path = COURSE.solutions / "a1_backprop" / "backprop.ipynb"
    assert verdicts("a1_backprop", path, sandboxed=False) == all_pass("a1_backprop")


TORCH2_MUL = '''
class Mul(torch.autograd.Function):
    @staticmethod
    def forward(i, j):
        return i * j

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        return grad_output * y, grad_output * x, None
'''


def test_notebook_habits_and_what_torch_accepts_pass(tmp_path):
    path = notebook_with(tmp_path, "a1_backprop", {
        "square": lambda source: "%matplotlib inline\n!echo hello\n" + source,
        "add": lambda source: "from backprop_checks import random_inputs\nimport graph_drawer\n"
                              + simulate.replace_line(source, "return grad_output, grad_output",
                                                      "return grad_output, grad_output, None, None"),
        "mul": TORCH2_MUL,
    })
    assert verdicts("a1_backprop", path) == all_pass("a1_backprop")


# --- wrong answers fail, each for its reason ------------------------------------------------------

def test_the_seed_mul_bug_fails_only_test_mul(tmp_path):
    path = notebook_with(tmp_path, "a1_backprop", {
        "mul": ("return grad_output * y, grad_output * x", "return y, x"),
        "square": ("return grad_output * 2 * t", "return grad_output * 2 * t.detach().clone().fill_(1.5)"),
    })
    assert verdicts("a1_backprop", path) == {
        **all_pass("a1_backprop"),
        "test_square": (False, "wrong gradient for input 0"),
        "test_mul": (False, "wrong gradient for input 0"),
    }


def test_float32_accumulator_and_wrong_broadcast_axis_fail(tmp_path):
    path = notebook_with(tmp_path, "a1_backprop", {
        "square": ("return grad_output * 2 * t",
                   "g = torch.zeros(t.shape); g += grad_output * 2 * t; return g"),
        "add": lambda source: source.replace("result = i + j", "ctx.j_shape = j.shape\n        result = i + j")
                                    .replace("return grad_output, grad_output",
                                             "return grad_output, (grad_output if grad_output.shape == ctx.j_shape "
                                             "else grad_output.sum(dim=-1, keepdim=True))"),
    })
    got = verdicts("a1_backprop", path)
    assert got["test_square"] == (False, "gradient for input 0 is float32, the input float64")
    assert got["test_add"] == (False, "gradient for input 1 has shape (3, 1), the input (4,)")


def test_graph_exercises_check_every_node(tmp_path):
    path = notebook_with(tmp_path, "a1_backprop", {
        "fruit_shopping": lambda source: source.replace("Mul.apply(apple, num_apple)", "Mul.apply(apple, num_tangerine)")
                                               .replace("Mul.apply(tangerine, num_tangerine)", "Mul.apply(tangerine, num_apple)"),
        "apple_shopping": ("price = Mul.apply(apple, num)", "price = apple * num"),
    })
    assert verdicts("a1_backprop", path) == {
        **all_pass("a1_backprop"),
        "test_apple_shopping": (False, "node 0 was not made by Mul.apply (made by MulBackward0)"),
        "test_fruit_shopping": (False, "wrong forward value at node 'apple_price'"),
    }


def test_a_raising_backward_and_a_crash(tmp_path):
    path = notebook_with(tmp_path, "a1_backprop", {
        "add": ("return grad_output, grad_output", "raise RuntimeError('no backward here')"),
        "mul": lambda source: source + "\nimport os; os._exit(3)",
    })
    stopped = (False, "the verifier stopped (crash, exit or closed channel)")
    assert verdicts("a1_backprop", path) == {
        "test_square": (True, ""), "test_add": (False, "the student's code raised RuntimeError: no backward here"),
        "test_mul": stopped, "test_apple_shopping": stopped, "test_fruit_shopping": stopped}


def test_a2_in_place_relu_and_unsummed_bias_fail(tmp_path):
    path = notebook_with(tmp_path, "a2_layers", {
        "relu": ("return grad_output.masked_fill(mask, 0)", "grad_output[mask] = 0; return grad_output"),
        "affine": ("db = grad_output.sum(dim=0)", "db = grad_output"),
    })
    assert verdicts("a2_layers", path) == {
        **all_pass("a2_layers"),
        "test_relu": (False, "backward changed grad_output in place"),
        "test_affine": (False, "gradient for input 2 has shape (5, 4), the input (4,)"),
    }


TWO_D_ONLY = '''
def numerical_gradient(f, x, h=1e-4):
    grad = torch.zeros_like(x)
    with torch.no_grad():
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                keep = x[i, j].item()
                x[i, j] = keep + h
                f_plus = float(f(x))
                x[i, j] = keep - h
                f_minus = float(f(x))
                x[i, j] = keep
                grad[i, j] = (f_plus - f_minus) / (2 * h)
    return grad
'''


def test_a3_numerical_gradient_and_net_mistakes_fail(tmp_path):
    path = notebook_with(tmp_path, "a3_two_layer_net", {
        "numerical_gradient": TWO_D_ONLY,
        "two_layer_net": ("hidden = ReLU.apply(Affine.apply(x, p[\"W1\"], p[\"b1\"]))",
                          "hidden = Affine.apply(x, p[\"W1\"], p[\"b1\"])"),
    })
    assert verdicts("a3_two_layer_net", path) == {
        "test_layers": (True, ""),
        "test_two_layer_net": (False, "not built from ReLU (found Affine, SoftmaxWithLoss)"),
        "test_numerical_gradient": (False, "the student's code raised IndexError: tuple index out of range"),
        "test_accuracy": (True, ""),
    }


def test_a3_numerical_gradient_must_handle_a_parameter_that_requires_grad(tmp_path):
    path = notebook_with(tmp_path, "a3_two_layer_net", {"numerical_gradient": lambda source: source.replace(
        "with torch.no_grad():", "if True:")})
    assert verdicts("a3_two_layer_net", path)["test_numerical_gradient"] == (
        False, "the student's code raised RuntimeError: a view of a leaf Variable that requires grad is being "
               "used in an in-place operation.")


# --- forgers and saboteurs --------------------------------------------------------------------------
# Each attack is appended to the release's Square cell: every backward still raises NotImplementedError.

LOOK_FOR_CASES = '''
import gc, json, os, sys
KEY = "up" + "stream"

PATTERN = '"' + KEY + '": {'

def visible_cases():
    """The distinct cases (by upstream gradient) in this process's objects, frames and folder."""
    found = {repr(o[KEY]) for o in gc.get_objects() if isinstance(o, dict) and KEY in o}
    frame = sys._getframe()
    while frame is not None:
        for value in frame.f_locals.values():
            if isinstance(value, (str, bytes)) and value is not PATTERN and PATTERN in str(value):
                found.add(repr(json.loads(value)["case"][KEY]))
        frame = frame.f_back
    for name in os.listdir("."):
        try:
            found |= {name} if PATTERN in open(name, errors="replace").read() else set()
        except OSError:
            pass
    return found

AT_START = len(visible_cases())

class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        return t ** 2

    @staticmethod
    def backward(ctx, grad_output):
        raise RuntimeError(f"cases visible: {AT_START} before, {len(visible_cases())} while one runs")
'''

FAKE_REPLY = '(\'{"id": "%d", "result": {"own_node": true}}\\n\' % seq).encode()'
CHANNEL = "[o for o in gc.get_objects() if type(o).__name__ == 'socket' and o.fileno() >= 0][0]"
REWRITE = '''
import gc, json, socket
send = socket.socket.sendall
def forged(self, data):
    reply = json.loads(data)
    if "ok" not in reply:
        reply = {"id": reply["id"], "result": %s}
    send(self, %s)
socket.socket.sendall = forged
'''


def forged_result(result, encode="json.dumps(reply).encode() + b'\\n'"):
    return REWRITE % (result, encode)


ATTACKS = {
    "fake_replies_on_every_fd": ("import os\nfor fd in range(256):\n    for seq in range(1, 60):\n"
                                 "        try:\n            os.write(fd, " + FAKE_REPLY + ")\n"
                                 "        except OSError:\n            pass", "a reply to another request"),
    "reply_ahead_of_time": ("import gc\nfor seq in (2, 3, 4):\n    " + CHANNEL + ".sendall(" + FAKE_REPLY + ")",
                            "a reply to another request"),
    "close_every_descriptor": ("import os\nos.closerange(3, 1024)",
                               "the verifier stopped (crash, exit or closed channel)"),
    "channel_replaced_by_a_fifo": ("import gc, os\nos.mkfifo('fifo')\nos.dup2(os.open('fifo', os.O_RDWR), "
                                   + CHANNEL + ".fileno())", "the verifier stopped (crash, exit or closed channel)"),
    "never_answer": ("while True:\n    pass", "no reply within the time limit"),
    "flood": ("import gc\n" + CHANNEL + ".sendall(b'x' * 2**20)",
              f"a reply longer than {verify_channel.MAX_REPLY} bytes"),
    "not_json": (forged_result("None", "b'{\"id\": \"3\", \"result\": ' + b'[' * 100000 + b'\\n'"),
                 "a reply that is not JSON"),
    "deeply_nested": (forged_result("None", "(json.dumps(reply)[:-1] + ', \"x\": ' + '[' * 100000 + ']' * 100000"
                                            " + '}').encode() + b'\\n'"), "a reply that is not JSON"),
    "id_not_a_string": (forged_result("{}", "json.dumps({**reply, 'id': True}).encode() + b'\\n'"),
                        "a reply without its request's id"),
    "sent_twice": (forged_result("{}", "(json.dumps(reply) + '\\n') .encode() * 2"), verify_channel.UNASKED),
    "huge_values": (forged_result("{'own_node': True, 'out': {'dtype': 'float64', 'shape': [10**6], "
                                  "'values': [1.0] * 10**6}}"), f"a reply longer than {verify_channel.MAX_REPLY} bytes"),
}

MALFORMED_RESULTS = {
    "nan": ("{'own_node': True, 'out': {'dtype': 'float64', 'shape': [], 'values': [float('nan')]}}",
            "malformed result: out holds something other than finite numbers"),
    "ragged": ("{'own_node': True, 'out': {'dtype': 'float64', 'shape': [2], 'values': [[1.0], [2.0, 3.0]]}}",
               "malformed result: out holds something other than finite numbers"),
    "wrong_count": ("{'own_node': True, 'out': {'dtype': 'float64', 'shape': [3], 'values': [1.0]}}",
                    "malformed result: out does not hold one number per element of its shape"),
    "own_node_as_text": ("{'own_node': 'yes'}", "malformed result: 'own_node' is not true or false"),
    "made_up_numbers": ("{'own_node': True, 'out': {'dtype': 'float64', 'shape': [], 'values': [1.0]}}",
                          "forward values differ"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_forged_or_sabotaged_channel_fails_every_check(tmp_path, attack):
    code, reason = ATTACKS[attack]
    path = notebook_with(tmp_path, "a1_backprop", {"square": lambda source: source + "\n" + code}, base="release")
    started = time.monotonic()
    assert verdicts("a1_backprop", path, timeout=8) == {grade_id: (False, reason) for grade_id in A1_GRADES}
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("kind", sorted(MALFORMED_RESULTS))
def test_a_malformed_result_fails_its_check(tmp_path, kind):
    result, reason = MALFORMED_RESULTS[kind]
    path = notebook_with(tmp_path, "a1_backprop", {"square": lambda source: source + "\n" + forged_result(result)},
                         base="release")
    assert verdicts("a1_backprop", path)["test_square"] == (False, reason)


def test_no_case_is_visible_before_it_is_asked(tmp_path):
    path = notebook_with(tmp_path, "a1_backprop", {"square": LOOK_FOR_CASES}, base="release")
    assert verdicts("a1_backprop", path)["test_square"] == (
        False, "the student's code raised RuntimeError: cases visible: 0 before, 1 while one runs")


def test_one_students_sabotage_costs_only_that_student(tmp_path):
    folders = {name: tmp_path / name for name in ("honest", "flood", "broken")}
    for folder in folders.values():
        folder.mkdir()
    (folders["honest"] / "backprop.ipynb").write_bytes((COURSE.solutions / "a1_backprop" / "backprop.ipynb").read_bytes())
    notebook_with(folders["flood"], "a1_backprop", {"square": lambda s: s + "\n" + ATTACKS["flood"][0]}, base="release")
    (folders["broken"] / "backprop.ipynb").write_text("[" * 100_000)
    course = SimpleNamespace(submission=lambda student, assignment: folders[student], release=COURSE.release)
    options = SimpleNamespace(verify_timeout=20, sandboxed=True, jobs=2)
    got = {student: verify.verify_student(course, "a1_backprop", student, options, seed=3)
           for student in sorted(folders)}
    assert got["honest"] == verify.Verification({g: verify.Verdict(True, "") for g in A1_GRADES})
    assert got["flood"].verdicts == {g: verify.Verdict(False, ATTACKS["flood"][1]) for g in A1_GRADES}
    assert got["broken"].verdicts == {} and got["broken"].error
