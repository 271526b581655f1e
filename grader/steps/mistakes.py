"""Mistakes: the misconception behind a wrong answer, named on the trusted side from its numbers.

When verification finds a case wrong (``verify.py``), ``name_mistake`` names the mistake from the
student's returned gradients and torch's for the same case, with the course's own diagnosis:
``backprop_checks.diagnose`` from ``solutions/a1_backprop/backprop_checks.py`` (the module the
students import, loaded here by path, on the trusted side, and called only on numbers computed
here or validated from the runner's result; never on anything a kernel printed). One catalogue,
one wording: the labels below are the first clause of the sentence ``diagnose`` or
``check_function`` says to the student.
"""
import importlib.util
from collections import Counter

import torch

from ..course import REPO_ROOT
from ..specs.replies import field, flag, numbers, numbers_list


def _load_backprop_checks():
    path = REPO_ROOT / "solutions" / "a1_backprop" / "backprop_checks.py"
    spec = importlib.util.spec_from_file_location("grader_backprop_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


backprop_checks = _load_backprop_checks()

NOT_RECOGNISED = "wrong, not recognised"

# name -> (Korean, English), as backprop_checks words each mistake to the student.
CATALOGUE = {
    "ignored grad_output": ("backward가 grad_output을 무시합니다", "backward ignores grad_output"),
    "swapped operands": ("두 입력의 기울기가 뒤바뀌었습니다", "swapped operands"),
    "sign": ("기울기의 부호가 반대입니다", "sign error"),
    "transposed dW": ("기울기가 전치되어 있습니다", "transposed gradient"),
    "missing batch sum": ("배치에 대해 합하지 않았습니다", "missing sum over the batch"),
    "missing /N": ("배치 크기 N으로 나누기를 빠뜨렸거나 두 번 곱했나요?",
                   "a division by the batch size N missing or applied twice"),
    "in-place grad_output": ("backward가 grad_output을 제자리에서(in place) 바꿉니다",
                             "backward changes grad_output in place"),
    "wrong number of gradients": ("backward는 forward의 입력마다 하나씩 기울기를 돌려주어야 합니다",
                                  "wrong number of returned gradients"),
    "float32": ("float64가 필요한 곳에서 float32를 썼습니다", "float32 where float64 was needed"),
    NOT_RECOGNISED: ("틀렸지만 알려진 실수가 아닙니다", "wrong, not a mistake the catalogue knows"),
}

# How each of diagnose's English sentences begins -> its name in the catalogue (tested: every
# name diagnose can give is reached, so a rewording there fails tests/test_mistakes.py).
_DIAGNOSED = {
    "float32 where": "float32",
    "the gradient is float64 but has only float32's": "float32",  # a float32 buffer cast back
    "missing sum over the batch": "missing batch sum",
    "transposed gradient": "transposed dW",
    "backward ignores grad_output": "ignored grad_output",
    "swapped operands": "swapped operands",
    "sign error": "sign",
    "the gradient is off by": NOT_RECOGNISED,  # a factor that is not an integer
    "the gradient is ": "missing /N",  # "... N times too large/small" (an integer factor)
}
_DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
           "bfloat16": torch.bfloat16, "int64": torch.int64}


def diagnosed_name(got, expected, ones_expected=None, swapped=None):
    """The catalogue name of ``backprop_checks.diagnose``'s verdict; '' when ``got`` is right."""
    try:
        found = backprop_checks.diagnose(got, expected, ones_expected, swapped)
    except RuntimeError:  # shapes torch cannot even broadcast: no name
        return NOT_RECOGNISED
    if found is None:
        return ""
    return next((name for start, name in _DIAGNOSED.items() if found[1].startswith(start)), NOT_RECOGNISED)


def _decode(encoded):
    """A tensor the trusted side encoded itself (a case's request)."""
    return torch.tensor(encoded["values"], dtype=_DTYPES[encoded["dtype"]]).reshape(encoded["shape"])


def _tensor(got):
    """A validated runner Numbers as a tensor of the dtype it claimed (float64 when unknown)."""
    return got.values.to(_DTYPES.get(got.dtype, torch.float64))


def _reference_grads(reference, inputs, wants_grad, upstream):
    leaves = [x.clone().requires_grad_(w) for x, w in zip(inputs, wants_grad)]
    found = iter(torch.autograd.grad(reference(*leaves), [x for x in leaves if x.requires_grad], upstream))
    return [next(found) if w else None for w in wants_grad]


def _function_mistake(case, result):
    request = case.request
    inputs, wants_grad = [_decode(x) for x in request["inputs"]], request["grad"]
    returned = numbers_list(result, "returned")
    if len(returned) < len(inputs) or any(g is not None for g in returned[len(inputs):]):
        return "wrong number of gradients"
    if flag(result, "upstream_changed"):
        return "in-place grad_output"
    upstream = _decode(request["upstream"])
    expected = _reference_grads(case.reference, inputs, wants_grad, upstream)
    ones = _reference_grads(case.reference, inputs, wants_grad, torch.ones_like(upstream))
    for lenient in (True, False):  # shapes as the engine sums or broadcasts them; then the raw shapes
        for i, (got, want, one) in enumerate(zip(returned, expected, ones)):
            if want is None or got is None:
                continue
            got = _broadcast(_tensor(got), want.shape) if lenient else _tensor(got)
            others = [e for j, e in enumerate(expected) if j != i and e is not None and e.shape == want.shape]
            name = diagnosed_name(got, want, one, others[0] if len(others) == 1 else None)
            if name and name != NOT_RECOGNISED:
                return name
    return NOT_RECOGNISED


def _broadcast(got, shape):
    """``got`` summed down or expanded to ``shape`` where broadcasting allows, else as it is."""
    try:
        return got.sum_to_size(shape) if got.dim() >= len(shape) else got.expand(shape)
    except RuntimeError:
        return got


def _numerical_mistake(case, result):
    request = case.request
    x = _decode(request["x"]).requires_grad_()
    (want,) = torch.autograd.grad(eval(request["function"], {"torch": torch})(  # the spec's own source
        x, *(_decode(c) for c in request["constants"])), x)
    return diagnosed_name(_tensor(numbers(field(result, "out"), "out")), want) or NOT_RECOGNISED


def name_mistake(case, reply):
    """The catalogue name of the mistake behind a case verification found wrong.

    case: a ``grader.specs.cases.Case`` (its request and, for a Function, its torch reference);
    reply: the runner's reply, untrusted. '' when there are no numbers to name (the student's
    code raised, or no reply); ``NOT_RECOGNISED`` for numbers no catalogue entry explains. Never
    raises: naming is for the report, never a reason for verification to fail.
    """
    if not isinstance(reply, dict) or "result" not in reply:
        return ""
    kind = case.request.get("kind")
    try:
        if kind == "function" and case.reference is not None:
            return _function_mistake(case, reply["result"])
        if kind == "numerical":
            return _numerical_mistake(case, reply["result"])
    except Exception:  # Malformed, or numbers torch cannot compare: not a name
        pass
    return NOT_RECOGNISED


# --- the class's mistakes, for the report ---------------------------------------------------------

def of_student(outcome):
    """{grade id: mistake name} of one StudentOutcome's verdicts (named mistakes only)."""
    return {grade_id: v.mistake for grade_id, v in outcome.verdicts.items() if v.mistake}


def column(outcome):
    """The grades.csv ``mistakes`` cell: 'test_mul: ignored grad_output, ...'."""
    return ", ".join(f"{grade_id}: {name}" for grade_id, name in of_student(outcome).items())


def count(outcomes):
    """Counter of (grade id, mistake name) over the class."""
    return Counter(item for outcome in outcomes for item in of_student(outcome).items())


def top_lines(counts, top=3):
    """The class's ``top`` most common mistakes, one line each in Korean and English."""
    lines = []
    for (grade_id, name), n in counts.most_common(top):
        korean, english = CATALOGUE[name]
        lines.append(f"  {grade_id}: {n}명 {korean} / {n} student{'s' * (n != 1)}: {english} ({name})")
    return lines

