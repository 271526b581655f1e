"""The class report, after grading: what the class got wrong, and which answers look alike.

Fills the ``mistakes`` column of every grades.csv row and writes, beside grades.csv,
``mistakes.csv`` and ``mistakes.png`` (per exercise, how many students made each named mistake:
``mistakes.py``) and ``similarity.html`` (pairs of students whose own code matches:
``similarity.py``). Neither changes a score or a flag. Each part that fails costs only itself:
the summary says so and grading goes on to a complete grades.csv.
"""
import csv
import traceback
from dataclasses import dataclass, field

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import mistakes, similarity  # noqa: E402


@dataclass
class ClassReport:
    figures: list = field(default_factory=list)  # mistakes.png
    files: list = field(default_factory=list)    # mistakes.csv, similarity.html
    summary: str = ""
    similar: list = field(default_factory=list)  # [similarity.Pair] at or above the threshold


def write_mistakes_csv(path, counts, exercises):
    """mistakes.csv: per exercise (in ``exercises``' order), how many students made each mistake."""
    order = {grade_id: n for n, grade_id in enumerate(exercises)}
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["exercise", "mistake", "students", "korean", "english"])
        for (grade_id, name), n in sorted(counts.items(), key=lambda item: (order.get(item[0][0], len(order)),
                                                                             -item[1], item[0][1])):
            writer.writerow([grade_id, name, n, *mistakes.CATALOGUE[name]])
    return path


def draw_mistakes(path, counts, exercises):
    """mistakes.png: one bar per exercise, split by mistake (how many students made each)."""
    shown = [e for e in exercises if any(g == e for g, _ in counts)] or list(exercises)
    names = [name for name in mistakes.CATALOGUE if any(n == name for _, n in counts)]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(shown) + 1.8))
    left = [0] * len(shown)
    for number, name in enumerate(names):
        widths = [counts.get((e, name), 0) for e in shown]
        ax.barh(shown, widths, left=left, label=name, color=plt.cm.tab10(number % 10))
        left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlabel("students")
    ax.set_title("Mistakes named by verification, per exercise" if names else "No named mistakes")
    if names:
        ax.legend(fontsize=8, loc="lower right")
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _failed(part):
    return f"{part} failed: {(traceback.format_exc().strip().splitlines() or ['?'])[-1][:300]}"


def write(course, assignment, outcomes, rows, tests, out):
    """The class report of ``outcomes`` into folder ``out``; fills ``rows``' mistakes column."""
    report, lines = ClassReport(), []
    by_student = {o.student: o for o in outcomes}
    for row in rows:
        row["mistakes"] = mistakes.column(by_student[row["student"]])
    try:
        counts = mistakes.count(outcomes)
        report.files.append(write_mistakes_csv(out / "mistakes.csv", counts, list(tests)))
        report.figures.append(draw_mistakes(out / "mistakes.png", counts, list(tests)))
        lines += ["", "the class's most common mistakes / 반에서 가장 흔한 실수:"]
        lines += mistakes.top_lines(counts) or ["  none named / 이름 붙은 실수 없음"]
    except Exception:  # the report of mistakes only: the grades stand
        lines.append(_failed("mistakes report"))
    try:
        limit = similarity.threshold()
        page, pairs = similarity.report(course, assignment, [o.student for o in outcomes], out)
        report.files.append(page)
        report.similar = [p for p in pairs if p.similarity >= limit]
        lines += ["", f"similar answers at or above {limit:.0%} / 유사도 {limit:.0%} 이상 (evidence for a person, "
                      f"not a verdict / 판정이 아닌 증거): {page}"]
        lines += similarity.summary_lines(pairs, limit) or ["  none / 없음"]
    except Exception:
        lines.append(_failed("similarity report"))
    report.summary = "\n".join(lines)
    return report
