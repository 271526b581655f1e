"""A runner's result read as untrusted data: each field checked for type, shape and size before use.

Whatever the student's code sent in place of the runner's result, reading it either yields the
values a case compares or raises ``Malformed`` with what was wrong; nothing else escapes.
"""
import math
import re
from dataclasses import dataclass

import torch

MAX_DIMS = 8
MAX_NAME = 100
MAX_CAPABILITIES = 8  # the runner's own bound
CAPABILITY = re.compile(r"[A-Za-z0-9_.:]{1,80}")  # aten::sigmoid_backward, autograd_reentered, ...


class Malformed(ValueError):
    """A result field that is not what the runner sends."""


@dataclass(frozen=True)
class Numbers:
    """A tensor the runner reported: its values (as float64, for comparing) and its dtype's name."""
    values: torch.Tensor
    dtype: str

    @property
    def shape(self):
        return tuple(self.values.shape)


def field(result, name):
    if not isinstance(result, dict) or name not in result:
        raise Malformed(f"no {name!r}")
    return result[name]


def flag(result, name):
    value = field(result, name)
    if type(value) is not bool:
        raise Malformed(f"{name!r} is not true or false")
    return value


def _number(value):
    return (type(value) is float and math.isfinite(value)) or (type(value) is int and abs(value) < 2**63)


def numbers(value, name):
    """``value`` as Numbers: a dict of a dtype name, a shape and as many finite numbers as it holds."""
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "values"}:
        raise Malformed(f"{name} is not a tensor")
    dtype, shape, values = value["dtype"], value["shape"], value["values"]
    if not isinstance(dtype, str) or len(dtype) > MAX_NAME:
        raise Malformed(f"{name} has no dtype")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(type(n) is int and n >= 0 for n in shape):
        raise Malformed(f"{name} has no valid shape")
    if not isinstance(values, list) or len(values) != math.prod(shape):
        raise Malformed(f"{name} does not hold one number per element of its shape")
    if not all(_number(v) for v in values):
        raise Malformed(f"{name} holds something other than finite numbers")
    return Numbers(torch.tensor(values, dtype=torch.float64).reshape(shape), dtype)


def numbers_list(result, name, count=None):
    """A list of Numbers or None (no gradient); exactly ``count`` long when given."""
    value = field(result, name)
    if not isinstance(value, list) or (count is not None and len(value) != count):
        raise Malformed(f"{name!r} is not a list of {count if count is not None else 'some'} tensors")
    return [None if v is None else numbers(v, f"{name}[{i}]") for i, v in enumerate(value)]


def names(result, name, count=None):
    """A list of short strings; exactly ``count`` long when given."""
    value = field(result, name)
    if not isinstance(value, list) or (count is not None and len(value) != count) or \
            not all(isinstance(v, str) and len(v) <= MAX_NAME for v in value):
        raise Malformed(f"{name!r} is not a list of names")
    return value


def capabilities(reply):
    """The capabilities a case's reply says the student's code used (``verify_runner.py`` lists
    them): at most MAX_CAPABILITIES short names; Malformed when missing or anything else, which the
    grader reads as "not verified", never as clean."""
    value = field(reply, "capabilities")
    if not isinstance(value, list) or len(value) > MAX_CAPABILITIES or \
            not all(isinstance(v, str) and CAPABILITY.fullmatch(v) for v in value):
        raise Malformed("'capabilities' is not a list of capability names")
    return value
