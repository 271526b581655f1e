"""Similarity of answers: planted copies found and ranked first, honest answers written
independently not above the threshold, the scaffold and the course's answer never counted, the
page inert. Unit tests on answers built from the release; one grading of a small class at the end.
"""
import csv
import itertools
import zipfile

import nbformat
import pytest
import torch

from grader.course import Course, GradeOptions
from grader.demo import simulate
from grader.demo.demo import DEMO_ASSIGNMENT, DEMO_NOTEBOOK
from grader.specs import a1_backprop
from grader.steps import mistakes, similarity

SOLUTION = Course().solutions / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb"
RELEASE = Course().release / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb"
CORRECT = simulate.solution_answers(SOLUTION)

# Honest students, written independently in their own styles (grade id -> (the solution's line, theirs)).
SQUARE, ADD = "return grad_output * 2 * t", "return grad_output, grad_output"
MUL = "return grad_output * y, grad_output * x"
FRUIT = 'return {"apple_price": apple_price, "tangerine_price": tangerine_price,'
HONEST_A = {"square": (SQUARE, ["return 2 * t * grad_output"]),
            "add": (ADD, ["return grad_output * 1, grad_output * 1"]),
            "mul": (MUL, ["grad_x = grad_output * y", "grad_y = grad_output * x", "return grad_x, grad_y"])}
HONEST_B = {"square": (SQUARE, ["dt = grad_output * (2 * t)", "return dt"]),
            "add": (ADD, ["g = grad_output", "return g, g"]),
            "mul": (MUL, ["return y * grad_output, x * grad_output"])}
HONEST_C = {"square": (SQUARE, ["return torch.mul(grad_output, 2.0 * t)"]),
            "add": (ADD, ["grad_i = grad_output", "grad_j = grad_output", "return grad_i, grad_j"]),
            "mul": (MUL, ["dx = grad_output * y", "dy = grad_output * x", "return dx, dy"])}
HONEST_D = {"square": (SQUARE, ["grad = 2 * t", "grad = grad * grad_output", "return grad"]),
            "add": (ADD, ["return grad_output.clone(), grad_output.clone()"]),
            "mul": (MUL, ["a, b = grad_output * y, grad_output * x", "return a, b"]),
            "fruit_shopping": (FRUIT, ["return dict(apple_price=apple_price, tangerine_price=tangerine_price,",
                                       "            price=price, result=result)"])}
HONEST_E = {"square": (SQUARE, ["local = 2 * t  # d(t^2)/dt", "return local * grad_output"]),
            "mul": (MUL, ["grad_x, grad_y = y * grad_output, x * grad_output", "return grad_x, grad_y"]),
            "fruit_shopping": (FRUIT, ['out = {"apple_price": apple_price, "tangerine_price": tangerine_price}',
                                       'out["price"] = price', 'out["result"] = result', "return out"])}
HONEST_F = {"square": (SQUARE, ["return grad_output.mul(t).mul(2)"]),
            "add": (ADD, ["return grad_output.clone(), grad_output.clone()  # d(x+y)/dx = d(x+y)/dy = 1"]),
            "mul": (MUL, ["return grad_output.mul(y), grad_output.mul(x)"]),
            "fruit_shopping": (FRUIT, ['keys = ("apple_price", "tangerine_price", "price", "result")',
                                       "return dict(zip(keys, (apple_price, tangerine_price, price, result)))"])}
HONEST = {"honest_a": HONEST_A, "honest_b": HONEST_B, "honest_c": HONEST_C, "honest_d": HONEST_D,
          "honest_e": HONEST_E, "honest_f": HONEST_F}


@pytest.fixture(scope="module")
def course_code():
    """(the scaffold's and the solution's lines, their texts as copydetect boilerplate)."""
    canonical = [similarity.answer_cells(RELEASE), similarity.answer_cells(SOLUTION)]
    return (set().union(*map(similarity.scaffold_lines, canonical)),
            ["".join(f"{s}\n" for s in cells.values()) for cells in canonical])


def own(tmp_path, answers, scaffold, name="nb"):
    """A student's own lines, from the release filled with ``answers`` and read back as a notebook."""
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(simulate.build_submission(RELEASE, answers), path)
    return similarity.own_code(similarity.answer_cells(path), scaffold)


def simulated(tmp_path, scaffold):
    """{kind + number: own lines} of the simulated class (notebooks only) and the honest students."""
    answers = {}
    for number, (kind, plan, _) in enumerate(simulate.simulated_class(SOLUTION)):
        if not isinstance(plan, bytes):
            answers[f"{kind}{number}"] = own(tmp_path, plan[0] if isinstance(plan, tuple) else plan, scaffold)
    for name, style in HONEST.items():
        answers[name] = own(tmp_path, simulate.own_style(CORRECT, style), scaffold)
    return answers


@pytest.mark.parametrize("style", [*HONEST.values(), simulate.OWN_STYLE], ids=[*HONEST, "own_style"])
def test_honest_answers_are_right_and_their_own(style):
    answers = simulate.own_style(CORRECT, style)
    assert all(answers[g] != CORRECT[g] for g in style)
    namespace = {"torch": torch}
    for source in answers.values():
        exec(source, namespace)
    checks = mistakes.backprop_checks
    checks.check_function(namespace["Square"], torch.square, checks.random_inputs((3, 4)))
    for name, op in (("Add", torch.add), ("Mul", torch.mul)):
        checks.check_function(namespace[name], op, checks.random_inputs((3, 4), (3, 4)))
    checks.check_graph(namespace["fruit_shopping"], a1_backprop.fruit,
                       {"apple": 100, "num_apple": 2, "tangerine": 150, "num_tangerine": 3, "ctax": 1.1}, namespace,
                       upstream=1.5)


def test_the_scaffold_and_the_course_answer_never_count(tmp_path, course_code):
    scaffold, boilerplate = course_code
    answers = {s: own(tmp_path, CORRECT, scaffold, s) for s in ("x", "y")}
    answers["blank"] = own(tmp_path, {}, scaffold, "blank")
    assert answers == {"x": {}, "y": {}, "blank": {}}
    assert similarity.compare(answers, boilerplate) == []


def test_a_renamed_copy_is_found_whole_and_an_honest_pair_is_not(tmp_path, course_code):
    scaffold, boilerplate = course_code
    mine = simulate.own_style(CORRECT, simulate.OWN_STYLE)
    answers = {"author": own(tmp_path, mine, scaffold, "a"),
               "copier": own(tmp_path, simulate.copied(mine), scaffold, "c"),
               "honest_a": own(tmp_path, simulate.own_style(CORRECT, HONEST_A), scaffold, "ha"),
               "honest_b": own(tmp_path, simulate.own_style(CORRECT, HONEST_B), scaffold, "hb")}
    assert "local_slope" in answers["author"]["square"] and "slope = t + t" in answers["copier"]["square"]
    pairs = similarity.compare(answers, boilerplate)
    assert [(p.first, p.second, p.similarity) for p in pairs] == [("author", "copier", 1.0)]


def test_calibration_planted_copies_first_and_no_other_pair_above_the_threshold(tmp_path, course_code):
    """The false-positive rate on the simulated class and the honest students: 0 pairs of 593."""
    scaffold, boilerplate = course_code
    answers = simulated(tmp_path, scaffold)
    kind = {name: name.rstrip("0123456789") for name in answers}
    pairs = similarity.compare(answers, boilerplate)
    planted = {frozenset(pair) for pair in simulate.PLANTED_COPIES}
    ranked = [frozenset((kind[p.first], kind[p.second])) for p in pairs]
    assert set(ranked[:len(planted)]) == planted
    above = [p for p in pairs if p.similarity >= similarity.DEFAULT_THRESHOLD]
    honest_pairs = len(list(itertools.combinations(answers, 2))) - len(planted)
    assert (len(above), honest_pairs) == (len(planted), 593)


def test_references_are_compared_with_students_only(tmp_path, course_code):
    scaffold, boilerplate = course_code
    mine = own(tmp_path, simulate.own_style(CORRECT, simulate.OWN_STYLE), scaffold)
    pairs = similarity.compare({"student": mine}, boilerplate, {"reference:2025/a": mine, "reference:2025/b": mine})
    assert sorted((p.first, p.second) for p in pairs) == [("student", "reference:2025/a"),
                                                          ("student", "reference:2025/b")]


def test_code_most_of_the_class_shares_is_common_knowledge(tmp_path, course_code):
    scaffold, boilerplate = course_code
    mine = own(tmp_path, simulate.own_style(CORRECT, simulate.OWN_STYLE), scaffold)
    others = {f"other{n}": {"square": f"value_{n} = compute_{n}(grad_output, {n} * t) ** {n}"} for n in range(8)}
    assert len(similarity.compare({**others, "a": mine, "b": mine, "c": mine}, boilerplate)) == 3
    same = {f"s{n}": mine for n in range(similarity.COMMON + 1)}
    assert similarity.compare({**same, "odd": {"square": "x"}}, boilerplate) == []


def test_the_page_is_inert_and_marks_the_matches(tmp_path):
    hostile = ("x = 1  # </pre><script>alert(1)</script><img src=x onerror=alert(2)>\n"
               "total_of_all = x + x * x - x / 3 + x ** 2\nreturn_value = total_of_all * 42\n")
    code = {"<b>a</b>": {"<i>cell</i>": hostile}, "b": {"<i>cell</i>": hostile}}
    pairs = similarity.compare(code)
    page = similarity.write_html(tmp_path / "similarity.html", "t", pairs, code, limit=0.5).read_text()
    assert "<script" not in page and "<img" not in page and "<b>a</b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "default-src 'none'" in page
    assert page.count("<mark>") >= 2 and "100% ▲" in page


def test_the_threshold_is_a_course_setting(monkeypatch):
    assert similarity.threshold() == similarity.DEFAULT_THRESHOLD
    monkeypatch.setenv("COURSE_SIMILARITY_THRESHOLD", "0.8")
    assert similarity.threshold() == 0.8


# --- one small class graded end to end: the class report finds what was planted -----------------

KINDS = ("correct", "copied_from", "copier", "source_mul", "copied_from_buggy", "copier_buggy", "swapped", "blank")


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A course copy with one student of each of KINDS collected from a Canvas zip, graded."""
    from grader import batch
    from grader.steps import collect
    course = Course().copy_to(tmp_path_factory.mktemp("class") / "course")
    course.nbgrader("generate_assignment", DEMO_ASSIGNMENT, "--force")
    plan = simulate.simulated_class(SOLUTION)
    plan = [next(entry for entry in plan if entry[0] == kind) for kind in KINDS]
    files = course.root / "lms_download"
    expected = simulate.write_lms_download(files, course.release / DEMO_ASSIGNMENT / f"{DEMO_NOTEBOOK}.ipynb", plan)
    archive = course.root / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(files.iterdir()):
            zf.write(path, path.name)
    collect.from_lms(course, DEMO_ASSIGNMENT, archive, "canvas")
    options = GradeOptions(jobs=2, cell_timeout=10, notebook_timeout=120, verify_timeout=10)
    return batch.grade(course, DEMO_ASSIGNMENT, options), {student: kind for student, (kind, _) in expected.items()}


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_class_report_finds_exactly_the_planted_mistakes_and_copies(graded_class):
    result, kinds = graded_class
    with open(result.csv, encoding="utf-8") as f:
        mistakes = {kinds[row["student"]]: row["mistakes"] for row in csv.DictReader(f)}
    assert mistakes == {kind: ", ".join(f"{g}: {m}" for g, m in simulate.PLANTED_MISTAKES.get(kind, {}).items())
                        for kind in KINDS}
    folder = result.csv.parent
    with open(folder / "mistakes.csv", encoding="utf-8") as f:
        assert [(r["exercise"], r["mistake"], r["students"]) for r in csv.DictReader(f)] == \
            [("test_mul", "ignored grad_output", "3"), ("test_mul", "swapped operands", "1")]
    with open(folder / "similarity.csv", encoding="utf-8") as f:
        ranked = [(kinds[r["first"]], kinds[r["second"]], float(r["similarity"])) for r in csv.DictReader(f)]
    assert {frozenset(r[:2]) for r in ranked[:2]} == {frozenset(p) for p in simulate.PLANTED_COPIES}
    assert [r for r in ranked if r[2] >= similarity.DEFAULT_THRESHOLD] == ranked[:2]
    assert (folder / "mistakes.png").stat().st_size > 0 and "<script" not in (folder / "similarity.html").read_text()
