"""Each wrong answer is named on the trusted side, from its numbers, with backprop_checks' catalogue.

A deliberately wrong Function per mistake answers a spec's own case through the verification
runner's own code (in this process: the Functions are ours), the case's judge finds it wrong,
and ``name_mistake`` names it from the numbers alone.
"""
import csv
from collections import Counter
from types import SimpleNamespace

import nbformat
import pytest
import torch

from grader.course import REPO_ROOT
from grader.inside import verify_runner
from grader.outcome import StudentOutcome, Verdict
from grader.specs import a1_backprop, a2_layers, a3_two_layer_net
from grader.steps import class_report, mistakes

HEADER = "import torch\nimport torch.nn.functional as F\n"


def reply(spec, grade_id, number, source):
    """(case, the runner's reply) for case ``number`` of ``grade_id``, answered by ``source``."""
    case = spec.TESTS[grade_id][number](torch.Generator().manual_seed(7))
    namespace = {}
    exec(HEADER + source, namespace)
    kind = verify_runner.KINDS[case.request["kind"]]
    return case, {"result": kind(case.request, namespace)}


def function(name, inputs, forward, backward, save="ctx.save_for_backward(" + "{args})"):
    args = ", ".join(inputs)
    return (f"class {name}(torch.autograd.Function):\n    @staticmethod\n    def forward(ctx, {args}):\n"
            f"        {save.format(args=args)}\n        return {forward}\n\n    @staticmethod\n"
            f"    def backward(ctx, grad_output):\n        {args}, = ctx.saved_tensors\n"
            + "".join(f"        {line}\n" for line in backward))


def mul(*backward):
    return function("Mul", ["x", "y"], "x * y", backward)


def square(*backward):
    return function("Square", ["t"], "t ** 2", backward)


def affine(*backward):
    return function("Affine", ["x", "W", "b"], "x @ W + b", backward)


def relu(*backward):
    return function("ReLU", ["x"], "x.clamp(min=0)", backward)


SOFTMAX = function("SoftmaxWithLoss", ["x", "t"],
                   "-(t * torch.log_softmax(x, dim=1)).sum() / x.shape[0]",
                   ["y = torch.softmax(x, dim=1)", "return grad_output * (y - t), None"],
                   save="t = F.one_hot(t, x.shape[1]).to(x.dtype) if t.dim() == 1 else t\n"
                        "        ctx.save_for_backward(x, t)")
RIGHT_AFFINE = ["return grad_output @ W.T, x.T @ grad_output, grad_output.sum(0)"]

WRONG = [  # (spec, grade id, case number, answer, the mistake's name)
    (a1_backprop, "test_mul", 0, mul("return y, x"), "ignored grad_output"),
    (a1_backprop, "test_mul", 1, mul("return grad_output * x, grad_output * y"), "swapped operands"),
    (a1_backprop, "test_mul", 4, mul("return y, x"), "ignored grad_output"),  # (4,) * (3, 4): y for x's (3, 4)
    (a1_backprop, "test_square", 1, square("return -2 * t * grad_output"), "sign"),
    (a1_backprop, "test_square", 1, square("return (2 * t * grad_output).float()"), "float32"),
    (a1_backprop, "test_square", 1, square("return grad_output * t ** 2"), mistakes.NOT_RECOGNISED),
    (a1_backprop, "test_add", 1, function("Add", ["x", "y"], "x + y", ["return grad_output"]),
     "wrong number of gradients"),
    (a2_layers, "test_affine", 0, affine("return grad_output @ W.T, (x.T @ grad_output).T, grad_output.sum(0)"),
     "transposed dW"),
    (a2_layers, "test_affine", 0, affine("return grad_output @ W.T, x.T @ grad_output, grad_output"),
     "missing batch sum"),
    (a2_layers, "test_relu", 1, relu("grad_output[x <= 0] = 0", "return grad_output"), "in-place grad_output"),
    (a2_layers, "test_softmax_with_loss", 1, SOFTMAX, "missing /N"),
]


@pytest.mark.parametrize("spec, grade_id, number, source, name", WRONG, ids=[w[-1] for w in WRONG])
def test_each_planted_mistake_is_named_from_the_numbers(spec, grade_id, number, source, name):
    case, answer = reply(spec, grade_id, number, source)
    assert case.reason(answer["result"])  # the judge finds it wrong
    assert mistakes.name_mistake(case, answer) == name


def test_every_catalogue_name_is_reached_by_a_test():
    assert {w[-1] for w in WRONG} == set(mistakes.CATALOGUE)


def test_the_catalogue_words_each_mistake_as_backprop_checks_does():
    """One wording: each label is part of what the released backprop_checks.py says to the student."""
    e = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=torch.float64)
    other = e.flip(0)
    said = {"float32": (e.float(), e), "missing batch sum": ((e / 4).expand(4, 2, 3), e), "transposed dW": (e.T, e),
            "ignored grad_output": (other, e, other), "swapped operands": (other, e, None, other),
            "sign": (-e, e), "missing /N": (4 * e, e)}
    said = {name: mistakes.backprop_checks.diagnose(*numbers) for name, numbers in said.items()}
    source = (REPO_ROOT / "solutions" / "a1_backprop" / "backprop_checks.py").read_text()
    for name, (korean, english) in mistakes.CATALOGUE.items():
        if name in said:
            assert korean in said[name][0] and english in said[name][1], name
        elif name != mistakes.NOT_RECOGNISED:  # said by check_function itself
            assert english in source and (korean in source or name == "wrong number of gradients"), name


@pytest.mark.parametrize("spec, grade_id, number, source", [
    (a1_backprop, "test_mul", 2, mul("return grad_output * y, grad_output * x")),
    (a2_layers, "test_affine", 0, affine(*RIGHT_AFFINE)),
])
def test_a_right_answer_is_judged_right(spec, grade_id, number, source):
    case, answer = reply(spec, grade_id, number, source)
    assert case.reason(answer["result"]) == ""


def test_a_float32_numerical_gradient_is_named():
    source = ("def numerical_gradient(f, x):\n    h, grad = 1e-4, torch.zeros(x.shape)\n"
              "    for i in range(x.numel()):\n        v = x.detach().clone().reshape(-1)\n"
              "        v[i] += h\n        up = f(v.reshape(x.shape))\n        v[i] -= 2 * h\n"
              "        grad.reshape(-1)[i] = (up - f(v.reshape(x.shape))) / (2 * h)\n    return grad")
    case, answer = reply(a3_two_layer_net, "test_numerical_gradient", 1, source)
    assert case.reason(answer["result"])
    assert mistakes.name_mistake(case, answer) == "float32"


@pytest.mark.parametrize("answer", [{"error": "NotImplementedError: "}, None, {"result": {"returned": "x"}}])
def test_no_numbers_no_name_and_a_malformed_result_is_not_recognised(answer):
    case = a1_backprop.TESTS["test_mul"][0](torch.Generator().manual_seed(0))
    expected = mistakes.NOT_RECOGNISED if answer and "result" in answer else ""
    assert mistakes.name_mistake(case, answer) == expected


def test_the_csv_column_and_the_class_counts():
    students = [StudentOutcome("a", verdicts={"test_mul": Verdict(False, "wrong", "ignored grad_output"),
                                              "test_add": Verdict(True)}),
                StudentOutcome("b", verdicts={"test_mul": Verdict(False, "wrong", "ignored grad_output"),
                                              "test_square": Verdict(False, "wrong", "sign")}),
                StudentOutcome("c", verdicts={"test_add": Verdict(False, "the student's code raised")})]
    assert [mistakes.column(s) for s in students] == \
        ["test_mul: ignored grad_output", "test_mul: ignored grad_output, test_square: sign", ""]
    counts = mistakes.count(students)
    assert counts == Counter({("test_mul", "ignored grad_output"): 2, ("test_square", "sign"): 1})
    lines = mistakes.top_lines(counts)
    assert len(lines) == 2 and "2명" in lines[0] and "2 students: backward ignores grad_output" in lines[0]


def class_of_two(tmp_path):
    """Two outcomes with named mistakes, whose submitted answers are a copy of one another."""
    from grader.course import Course
    from grader.demo import simulate
    course = Course()
    correct = simulate.solution_answers(course.solutions / "a1_backprop" / "backprop.ipynb")
    mine = simulate.own_style(correct, simulate.OWN_STYLE)
    for student, answers in (("a", mine), ("b", simulate.copied(mine))):
        folder = tmp_path / "submitted" / student / "a1_backprop"
        folder.mkdir(parents=True)
        nbformat.write(simulate.build_submission(course.release / "a1_backprop" / "backprop.ipynb", answers),
                       folder / "backprop.ipynb")
    view = SimpleNamespace(root=tmp_path, release=course.release, solutions=course.solutions,
                           submission=lambda student, assignment: tmp_path / "submitted" / student / assignment)
    outcomes = [StudentOutcome("a", verdicts={"test_mul": Verdict(False, "wrong", "ignored grad_output")}),
                StudentOutcome("b", verdicts={"test_mul": Verdict(False, "wrong", "ignored grad_output"),
                                              "test_square": Verdict(False, "wrong", "sign")})]
    return view, outcomes


def test_the_class_report_fills_the_column_and_writes_its_files(tmp_path):
    course, outcomes = class_of_two(tmp_path)
    rows = [{"student": "a"}, {"student": "b"}]
    tests = {"test_square": 2, "test_add": 2, "test_mul": 3}
    result = class_report.write(course, "a1_backprop", outcomes, rows, tests, tmp_path)
    assert [r["mistakes"] for r in rows] == ["test_mul: ignored grad_output",
                                             "test_mul: ignored grad_output, test_square: sign"]
    with open(tmp_path / "mistakes.csv", encoding="utf-8") as f:
        assert [(r["exercise"], r["mistake"], r["students"]) for r in csv.DictReader(f)] == \
            [("test_square", "sign", "1"), ("test_mul", "ignored grad_output", "2")]
    assert result.figures == [tmp_path / "mistakes.png"] and (tmp_path / "mistakes.png").stat().st_size
    assert [(p.first, p.second, p.similarity) for p in result.similar] == [("a", "b", 1.0)]
    assert "test_mul: 2명 backward가 grad_output을 무시합니다 / 2 students" in result.summary
    assert "a ↔ b: 100%" in result.summary


def test_a_failing_similarity_report_costs_only_itself(tmp_path, monkeypatch):
    course, outcomes = class_of_two(tmp_path)
    monkeypatch.setattr(class_report.similarity, "report", lambda *args: 1 / 0)
    rows = [{"student": "a"}, {"student": "b"}]
    result = class_report.write(course, "a1_backprop", outcomes, rows, {"test_mul": 3}, tmp_path)
    assert "similarity report failed: ZeroDivisionError" in result.summary
    assert rows[0]["mistakes"] and (tmp_path / "mistakes.csv").exists() and result.similar == []


def test_a_float32_buffer_cast_back_is_named_float32():
    """float64 numbers with only float32's digits (a float32 buffer cast back) are the float32 mistake."""
    expected = torch.rand(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 0.5
    assert mistakes.diagnosed_name(expected.float().double(), expected) == "float32"
