"""Similarity of answers: which pairs of students share code of their own, as evidence for a person.

After grading, each student's answer cells (nbgrader solution cells only) are reduced to the
student's own lines: every line that is also a line of the release's scaffold or of the course's
solution is dropped (so ``t, = ctx.saved_tensors`` or the canonical ``return grad_output * y,
grad_output * x`` never count: short exercises have few ways to be right). Each answer cell's
own lines are fingerprinted on their own, so a match lies within one exercise (two students who
write two short answers in the same shape do not match across them), with ``copydetect``, the
scaffold and the solution being its boilerplate as well
(the course's code reformatted still does not count), and earlier semesters' notebooks
(``grader/references/<assignment>/``) as references.

Why copydetect: it fingerprints code as MOSS does (pygments tokens, names and strings
normalised, so renaming or reformatting does not hide a copy; k-grams of K filtered characters,
winnowed: with its default thresholds every k-gram is kept, which answers this short afford),
takes boilerplate and reference files, and its comparison returns the matching slices of both
texts, which ``similarity.html`` shows side by side. Its own HTML report is not used: that
template loads Bootstrap's script from a CDN; ours is escaped text, no script, and a
Content-Security-Policy that allows none.

Similarity of a pair: the larger of the two students' shares of their own fingerprints that the
other holds too. Scale: one fingerprint set per student and an inverted index from fingerprint to
students give every pair's count of shared fingerprints without comparing texts; a fingerprint
held by more than ``COMMON`` answers is common knowledge (MOSS's ``-m``) and ignored, so each
fingerprint adds at most COMMON·(COMMON-1)/2 pair counts and the cost grows linearly with the
class. copydetect's comparison (the matching slices) runs only for the pairs the page shows. The
price: code shared by more than ``COMMON`` students (a copy ring that large, or a popular idiom)
is not reported.

It never changes a score and never flags a student: the page, ``similarity.csv`` and the
summary's list are for a person. What it shows: the same code beyond the scaffold and the
course's own answer, renamed or not. What it does not show: who copied whom, that a shared idea
was not found independently, or copying of the course's own solution.
"""
import csv
import html
import io
import itertools
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat
from copydetect import CodeFingerprint, compare_files

K = 25  # copydetect's noise threshold: a match shorter than K filtered characters never counts
WINDOW = 1  # copydetect's default guarantee threshold (25) - K + 1: every k-gram is kept
COMMON = 10  # a fingerprint held by more answers than this is common knowledge (MOSS's -m default)
MAX_ANSWER = 64 * 1024  # characters of one student's answers that are read (the rest is cut)
MAX_PAIRS_SHOWN = 50
DEFAULT_THRESHOLD = 0.5  # half of a student's own code; calibrated in tests/test_similarity.py


def threshold():
    """The course's setting: pairs at or above this similarity are listed in the summary."""
    return float(os.environ.get("COURSE_SIMILARITY_THRESHOLD", DEFAULT_THRESHOLD))


def answer_cells(notebook_path):
    """{grade id: source} of the notebook's answer cells (nbgrader solution cells), in order."""
    nb = nbformat.read(notebook_path, as_version=4)
    return {cell.metadata["nbgrader"].get("grade_id", "?"): cell.source[:MAX_ANSWER] for cell in nb.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")}


def scaffold_lines(cells):
    """The stripped lines of ``cells`` ({grade id: source}; the release's and the solution's)."""
    return {line.strip() for source in cells.values() for line in source.splitlines()}


def own_code(cells, scaffold):
    """{grade id: the student's own lines of that answer cell}: its lines that are not lines of the
    scaffold or the solution (``scaffold``); answers with no line of their own are left out."""
    code = {}
    for grade_id, source in cells.items():
        kept = [line for line in source.splitlines() if line.strip() not in scaffold]
        if any(line.strip() for line in kept):
            code[grade_id] = "\n".join(kept)[:MAX_ANSWER]
    return code


def _fingerprint(text, boilerplate=()):
    return CodeFingerprint("answer.py", K, WINDOW, boilerplate=list(boilerplate), language="python",
                           fp=io.StringIO(text))


def boilerplate_hashes(texts):
    """The fingerprints of ``texts`` (the release's scaffold, the course's solution): never evidence."""
    hashes = set()
    for text in texts:
        hashes |= _fingerprint(text).hashes
    return hashes


@dataclass(frozen=True)
class Pair:
    """Two answers that share code: each one's share of its own fingerprints found in the other."""
    first: str
    second: str
    similarity: float    # the larger of the two shares: what the ranking and the threshold use
    shares: tuple        # (first's share, second's share)
    shared: int          # fingerprints both hold
    slices: dict = field(default_factory=dict)  # grade id -> (first's, second's) matching (starts, ends);
    #                                             found for the pairs the page shows (MAX_PAIRS_SHOWN)


def compare(answers, boilerplate=(), references=None):
    """Pairs of ``answers`` ({student: {grade id: own code}}) sharing code, most similar first.

    Each exercise is fingerprinted on its own: a match lies within one answer cell.
    boilerplate: texts whose fingerprints never count; references: {name: {grade id: own code}}
    of earlier semesters, each compared with every student (never with each other).
    """
    references = references or {}
    ignored = boilerplate_hashes(boilerplate)
    prints = {name: {g: _fingerprint(text, ignored) for g, text in code.items()}
              for name, code in {**answers, **references}.items()}
    holders = defaultdict(list)
    for name, exercises in prints.items():
        for g, fingerprint in exercises.items():
            for h in fingerprint.hashes:
                holders[(g, h)].append(name)
    common = {key for key, names in holders.items() if len(names) > COMMON}
    shared, own = Counter(), Counter()
    for key, names in holders.items():
        if key not in common:
            own.update(names)
            shared.update((a, b) for a, b in itertools.combinations(names, 2) if a in answers or b in answers)
    pairs = sorted((Pair(a, b, max(n / own[a], n / own[b]), (n / own[a], n / own[b]), n)
                    for (a, b), n in shared.items()),
                   key=lambda p: (-p.similarity, -p.shared, p.first, p.second))
    return [replace(p, slices=_slices(prints[p.first], prints[p.second])) for p in pairs[:MAX_PAIRS_SHOWN]] \
        + pairs[MAX_PAIRS_SHOWN:]


def _slices(first, second):
    """grade id -> the matching slices of both answers to that exercise (copydetect's comparison)."""
    return {g: compare_files(first[g], second[g])[2] for g in first if g in second}


# --- the instructor's page ------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{title}</title>
<style>body{{font-family:sans-serif;margin:1em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}} pre{{margin:0;white-space:pre-wrap;
font-size:12px;max-width:48em}} mark{{background:#ffd27f}}</style></head><body>
<h1>{title}</h1>
<p>유사도는 증거일 뿐 판정이 아닙니다: 점수를 바꾸지 않고, 학생을 검토 대상으로 보내지도 않습니다.
비계(scaffold)와 강의의 정답 코드는 세지 않습니다. / Similarity is evidence for a person, not a verdict:
it changes no score and flags no student. The release's scaffold and the course's own solution never
count: only each student's own lines are compared; names and strings are normalised, so renaming does
not hide a match. Similarity: the larger of the two students' shares of their own fingerprints that the
other holds too; an answer shorter than {k} characters after normalising has no fingerprint and never
counts, and code more than {common} students share is common knowledge.
Threshold (COURSE_SIMILARITY_THRESHOLD): {threshold:.0%}.</p>
<h2>Pairs, most similar first / 유사한 쌍</h2>
<table><tr><th>#</th><th>first</th><th>second</th><th>similarity</th><th>shares</th><th>shared fingerprints</th></tr>
{rows}</table>
{details}
</body></html>
"""


def _marked(text, slices):
    """``text`` escaped, with the matching slices in <mark>."""
    out, at = [], 0
    for start, end in sorted(zip(*(list(map(int, s)) for s in slices))):
        start, end = max(start, at), min(end, len(text))
        if start >= end:
            continue
        out += [html.escape(text[at:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        at = end
    out.append(html.escape(text[at:]))
    return "".join(out)


def write_html(path, title, pairs, texts, limit=None):
    """similarity.html: the ranked pairs and, for each, both students' own code side by side,
    exercise by exercise, matches marked. texts: {name: {grade id: own code}}."""
    limit = threshold() if limit is None else limit
    shown = pairs[:MAX_PAIRS_SHOWN]
    rows, details = [], []
    for number, pair in enumerate(shown, 1):
        above = " ▲" if pair.similarity >= limit else ""
        rows.append(f"<tr><td><a href='#pair{number}'>{number}</a></td><td>{html.escape(pair.first)}</td>"
                    f"<td>{html.escape(pair.second)}</td><td>{pair.similarity:.0%}{above}</td>"
                    f"<td>{pair.shares[0]:.0%} / {pair.shares[1]:.0%}</td><td>{pair.shared}</td></tr>")
        both = [*texts[pair.first], *(g for g in texts[pair.second] if g not in texts[pair.first])]
        cells = "".join(
            f"<tr><th colspan='2'>{html.escape(g)}</th></tr><tr>"
            f"<td><pre>{_marked(texts[pair.first].get(g, ''), pair.slices.get(g, ((), ()))[0])}</pre></td>"
            f"<td><pre>{_marked(texts[pair.second].get(g, ''), pair.slices.get(g, ((), ()))[1])}</pre></td></tr>"
            for g in both)
        details.append(f"<h3 id='pair{number}'>{number}. {html.escape(pair.first)} ↔ {html.escape(pair.second)}"
                       f" ({pair.similarity:.0%})</h3><table><tr><th>{html.escape(pair.first)}</th>"
                       f"<th>{html.escape(pair.second)}</th></tr>{cells}</table>")
    if len(pairs) > len(shown):
        details.append(f"<p>{len(pairs) - len(shown)} more pairs below these are not shown.</p>")
    Path(path).write_text(PAGE.format(title=html.escape(title), threshold=limit, k=K, common=COMMON,
                                      rows="\n".join(rows), details="\n".join(details)), encoding="utf-8")
    return Path(path)


def write_csv(path, pairs):
    """similarity.csv: every pair that shares code, most similar first (the page shows the top ones)."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["rank", "first", "second", "similarity", "first_share", "second_share", "shared_fingerprints"])
        for rank, p in enumerate(pairs, 1):
            writer.writerow([rank, p.first, p.second, f"{p.similarity:.3f}", f"{p.shares[0]:.3f}",
                             f"{p.shares[1]:.3f}", p.shared])
    return Path(path)


def summary_lines(pairs, limit=None):
    """The pairs at or above the threshold, one line each, for the terminal."""
    limit = threshold() if limit is None else limit
    return [f"  {p.first} ↔ {p.second}: {p.similarity:.0%} ({p.shared} shared fingerprints)"
            for p in pairs if p.similarity >= limit]


# --- one assignment after grading -----------------------------------------------------------------

def class_answers(course, assignment, students, scaffold):
    """{student: {grade id: own code}} of each student's submitted (repaired) notebooks."""
    answers = {}
    for student in students:
        cells = {}
        for path in sorted(course.submission(student, assignment).glob("*.ipynb")):
            try:
                cells.update(answer_cells(path))
            except Exception:  # not a notebook: nothing to compare, the grading notes say why
                continue
        answers[student] = own_code(cells, scaffold)
    return answers


def course_scaffold(course, assignment):
    """The release's answer cells (the scaffold) and the solutions' (the course's own answer)."""
    return [answer_cells(path) for folder in (course.release, course.solutions)
            for path in sorted((folder / assignment).glob("*.ipynb"))]


def references(course, assignment, scaffold):
    """Earlier semesters' notebooks, ``grader/references/<assignment>/**/*.ipynb``, by path."""
    folder = course.root / "grader" / "references" / assignment
    return {f"reference:{p.relative_to(folder)}": own_code(answer_cells(p), scaffold)
            for p in sorted(folder.rglob("*.ipynb"))}


def report(course, assignment, students, out):
    """Compare the class's answers, write ``out/similarity.html`` and ``similarity.csv``; (page, pairs)."""
    canonical = course_scaffold(course, assignment)
    scaffold = set().union(*map(scaffold_lines, canonical))
    answers = class_answers(course, assignment, students, scaffold)
    earlier = references(course, assignment, scaffold)
    pairs = compare(answers, ["".join(f"{source}\n" for source in cells.values()) for cells in canonical], earlier)
    write_csv(out / "similarity.csv", pairs)
    path = write_html(out / "similarity.html", f"{assignment}: similarity of answers / 답안 유사도", pairs,
                      {**answers, **earlier})
    return path, pairs
