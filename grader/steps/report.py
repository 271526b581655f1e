"""Grades out: one CSV row per student, a terminal summary, and figures for the instructor.

Scores come from the gradebook (the verified points where the assignment has a spec, else what
nbgrader's autograde recorded); flags and notes come from each student's ``StudentOutcome``. A
submission needing manual review gets no total: it is listed, never exported as a silent 0.
"""
import csv

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from nbgrader.api import Gradebook, MissingEntry  # noqa: E402


def collect_rows(course, assignment, outcomes, sandboxed):
    """({test name: max points}, one dict per student: per-test points, total, max and flags)."""
    rows = []
    with Gradebook(course.db_url, course.course_id) as gb:
        tests = [(nb.name, cell.name, cell.max_score) for nb in gb.find_assignment(assignment).notebooks
                 for cell in nb.grade_cells]
        for outcome in outcomes:
            row = {"student": outcome.student}
            needs_manual_grade = False
            try:
                submission = gb.find_submission(assignment, outcome.student)
                for nb_name, cell_name, _ in tests:
                    grade = gb.find_grade(cell_name, nb_name, assignment, outcome.student)
                    row[cell_name] = grade.score
                    needs_manual_grade |= bool(grade.needs_manual_grade)
                total = submission.score
                row["late_hours"] = round(submission.total_seconds_late / 3600, 2) or None
            except MissingEntry:
                total, needs_manual_grade = None, True
            except Exception as error:  # one unreadable record costs only its row
                gb.db.rollback()
                outcome.problems.append(f"report failed: {type(error).__name__}: {str(error)[:200]}")
                total = None
            flags = outcome.flags(needs_manual_grade)
            row.update(total=None if "manual_review" in flags else total,
                       max=sum(t[2] for t in tests), flags=";".join(flags),
                       sandbox="on" if sandboxed else "off",
                       verified="yes" if outcome.verified else "no", notes=outcome.notes())
            rows.append(row)
    return {t[1]: t[2] for t in tests}, rows


def write_csv(path, tests, rows):
    columns = ["student", *tests, "total", "max", "late_hours", "flags", "sandbox", "verified", "mistakes",
               "notes"]
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def summary(tests, rows):
    """The terminal table: one line per student, then each test's pass rate."""
    width = max([len(r["student"]) for r in rows] + [7])
    lines = [f"{'student':<{width}}  {'total':>6}  flags"]
    for r in rows:
        total = "REVIEW" if r["total"] is None else f"{r['total']:g}/{r['max']:g}"
        lines.append(f"{r['student']:<{width}}  {total:>6}  {r['flags']}")
    lines.append("")
    for name, rate in pass_rates(tests, rows).items():
        lines.append(f"{name:<24} passed by {rate:5.0%}")
    return "\n".join(lines)


def pass_rates(tests, rows):
    """test name -> share of graded students with full points on it."""
    graded = [r for r in rows if r["total"] is not None]
    return {name: (sum(1 for r in graded if r.get(name) == points) / len(graded) if graded else 0.0)
            for name, points in tests.items()}


def draw_figures(folder, tests, rows):
    """score_distribution.png and pass_rate_by_test.png; returns their paths."""
    totals = [r["total"] for r in rows if r["total"] is not None]
    maximum = rows[0]["max"] if rows else 1
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(totals, bins=range(0, int(maximum) + 2), align="left", rwidth=0.85, color="#4c72b0")
    ax.set_xlabel("total score")
    ax.set_ylabel("students")
    ax.set_title(f"Score distribution ({len(totals)} graded, "
                 f"{len(rows) - len(totals)} for manual review)")
    fig.tight_layout()
    distribution = folder / "score_distribution.png"
    fig.savefig(distribution, dpi=100)
    plt.close(fig)

    rates = pass_rates(tests, rows)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.barh(list(rates), [100 * v for v in rates.values()], color="#55a868")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("students with full points (%)")
    ax.set_title("Pass rate by test: which gradients go wrong")
    fig.tight_layout()
    by_test = folder / "pass_rate_by_test.png"
    fig.savefig(by_test, dpi=100)
    plt.close(fig)
    return [distribution, by_test]
