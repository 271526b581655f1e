"""A benchmark, not a test: the class report's cost on a synthetic class of answer cells (no grading).

``python -m grader.demo.class_report_bench --sizes 128 256 512`` builds, per size, that many
students' own lines from the simulated class's answers (each exercise written one of several
ways, names renamed per student so no two texts are equal), then times the similarity of every
pair (``similarity.compare``) and the naming of one wrong Mul case per student
(``mistakes.name_mistake``, as verification calls it). Both should grow about linearly.
"""
import argparse
import random
import re
import time
from collections import Counter

import torch

from ..course import Course
from ..specs import a1_backprop
from ..steps import mistakes, similarity
from . import simulate
from .demo import DEMO_ASSIGNMENT, DEMO_NOTEBOOK

WAYS = {  # grade id -> ways students write its lines (besides the solution's)
    "square": [["local_slope = t + t", "upstream = grad_output", "return upstream * local_slope"],
               ["dt = grad_output * (2 * t)", "return dt"],
               ["grad = 2 * t", "grad = grad * grad_output", "return grad"]],
    "add": [["left_grad = grad_output.clone()", "right_grad = grad_output.clone()", "return left_grad, right_grad"],
            ["g = grad_output", "return g, g"], ["return grad_output.clone(), grad_output.clone()"]],
    "mul": [["grad_first = torch.mul(grad_output, y)", "grad_second = torch.mul(grad_output, x)",
             "return grad_first, grad_second"], ["dx = grad_output * y", "dy = grad_output * x", "return dx, dy"],
            ["return y, x"]],
}
RENAMED = re.compile(r"\b(local_slope|upstream|left_grad|right_grad|grad_first|grad_second|dt|g|grad|dx|dy)\b")
COPY_EVERY = 16  # every 16th student copies the one before
LINES = {"square": "return grad_output * 2 * t", "add": "return grad_output, grad_output",
         "mul": "return grad_output * y, grad_output * x"}


def synthetic_class(size, seed=0):
    """{student: {grade id: own code}}: each exercise one of WAYS or the solution's, names suffixed
    per student, a line of Square's answer each student's own; every COPY_EVERY-th a copy."""
    course = Course()
    solution = course.solutions / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb"
    correct = simulate.solution_answers(solution)
    scaffold = similarity.scaffold_lines(correct) | similarity.scaffold_lines(
        similarity.answer_cells(course.release / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb"))
    rng = random.Random(seed)
    answers = {}
    for number in range(size):
        style = {g: (LINES[g], rng.choice(ways)) for g, ways in WAYS.items() if rng.random() < 0.7}
        if number % COPY_EVERY == COPY_EVERY - 1:  # a copy of the previous student's answers
            answers[f"s{number}"] = dict(answers[f"s{number - 1}"])
            continue
        unique = f"check = float(t.sum()) * {number} + float(grad_output.mean()) / {number + 1}"
        style["square"] = (LINES["square"], [unique, *style.get("square", (None, [LINES["square"]]))[1]])
        own = similarity.own_code(simulate.own_style(correct, style), scaffold)
        answers[f"s{number}"] = {g: RENAMED.sub(lambda m: f"{m.group(1)}_{number}", text) for g, text in own.items()}
    return answers


def time_similarity(size):
    answers = synthetic_class(size)
    started = time.perf_counter()
    pairs = similarity.compare(answers)
    return time.perf_counter() - started, len(pairs)


def time_mistakes(size):
    namespace = {}
    exec("import torch\n" + simulate.own_style(simulate.solution_answers(
        Course().solutions / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb"),
        {"mul": (LINES["mul"], ["return y, x"])})["mul"], namespace)
    from ..inside import verify_runner
    generator = torch.Generator().manual_seed(0)
    replies = []
    for _ in range(size):
        case = a1_backprop.TESTS["test_mul"][2](generator)
        replies.append((case, {"result": verify_runner.run_function(case.request, namespace)}))
    started = time.perf_counter()
    names = Counter(mistakes.name_mistake(case, reply) for case, reply in replies)
    return time.perf_counter() - started, dict(names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    args = parser.parse_args()
    for size in args.sizes:
        seconds, pairs = time_similarity(size)
        print(f"{size:5d} students: similarity {seconds:6.2f} s ({pairs} pairs share code)", flush=True)
        seconds, names = time_mistakes(size)
        print(f"{size:5d} students: naming a wrong Mul {seconds:6.2f} s {names}", flush=True)


if __name__ == "__main__":
    main()
