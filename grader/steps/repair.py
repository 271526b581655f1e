"""Repair: rebuild each submission on a fresh copy of the release, carrying over only answers.

Students delete, duplicate, add, move and retype cells, strip metadata, rename the notebook,
switch kernels or save in an old nbformat; stock nbgrader then fails or zeroes the submission.
Here the release is the skeleton and each answer cell is found in the student's notebook by its
nbgrader ``grade_id``, or, where the id was lost, by the name the answer defines
(``class Mul``, ``def apple_shopping``). Whatever else the student's file holds is dropped.

Parsing costs what the student sent (about 150 times a notebook's size in memory, for one built
of many small objects). A file of more than ``IN_PROCESS_BYTES`` is parsed and repaired in a
child process bounded in time and memory (``REPAIR_BOUNDS``), which hands back only the rebuilt
notebook (the release and the answers); one over ``MAX_BYTES`` or ``MAX_CELLS`` is not parsed
at all. Either way a notebook too expensive to read costs only its owner: manual review, with
the reason.
"""
import hashlib
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import bounded

EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")  # nbgrader's, kept for feedback
MAX_BYTES = 64 * 2**20  # a notebook larger than this is not an answer to these exercises
MAX_ANSWER_CHARS = 200_000  # nor is an answer cell longer than this
MAX_CELLS = 2_000  # nor a notebook of more cells (counted before parsing)
IN_PROCESS_BYTES = 2**20  # larger files are parsed in a bounded child process
REPAIR_BOUNDS = bounded.Bounds(seconds=60.0, memory_bytes=2 * 2**30)
DEFINITION = re.compile(r"^(?:class|def)\s+([A-Za-z_]\w*)", re.MULTILINE)


class NotANotebook(ValueError):
    """The file cannot be read as a notebook; the message says why, for the instructor."""


@dataclass
class Repaired:
    notebook: nbformat.NotebookNode
    repairs: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # answers left out: a person must look


def read_submission(raw: bytes):
    """Parse a submitted file as a notebook (any nbformat), or raise NotANotebook."""
    if not raw.strip():
        raise NotANotebook("empty file / 빈 파일")
    _check_size(len(raw))
    if raw.count(b'"cell_type"') > MAX_CELLS:
        raise NotANotebook(f"more than {MAX_CELLS:,} cells / 셀이 너무 많음")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise NotANotebook("binary file, not a notebook / 노트북이 아닌 바이너리 파일") from None
    except json.JSONDecodeError as error:
        raise NotANotebook(f"invalid JSON ({error.msg}, line {error.lineno}) / JSON 형식 오류") from None
    except RecursionError:
        raise NotANotebook("JSON nested too deeply / JSON 중첩이 너무 깊음") from None
    if not isinstance(data, dict) or ("cells" not in data and "worksheets" not in data):
        raise NotANotebook("JSON without notebook cells / 셀이 없는 JSON")
    try:
        return nbformat.reads(json.dumps(data), as_version=4), data.get("nbformat")
    except MemoryError:
        raise  # the reader's bound, not the notebook's form
    except Exception as error:  # nbformat raises several kinds for malformed notebooks
        raise NotANotebook(f"malformed notebook: {error}") from None


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _defined_names(source):
    return set(DEFINITION.findall(source))


def _find_answer(blank, cells, used):
    """The student's cell answering ``blank``, and how it was found (None if it was not)."""
    grade_id = _grade_id(blank)
    by_id = [c for c in cells if _grade_id(c) == grade_id and id(c) not in used]
    if by_id:
        changed = [c for c in by_id if c.source.strip() != blank.source.strip()]
        chosen = (changed or by_id)[-1]
        how = "duplicated" if len(by_id) > 1 else "id"
        return chosen, how
    names = _defined_names(blank.source)
    by_content = [c for c in cells if id(c) not in used and names & _defined_names(c.source)]
    if names and by_content:
        return by_content[-1], "content"
    return None, "missing"


def repair(student_nb, release_nb, file_name, release_name, nbformat_version=4):
    """A fresh copy of ``release_nb`` holding the student's answers, and the list of repairs."""
    fixed = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    repairs, problems = [], []
    if file_name != release_name:
        repairs.append(f"renamed {file_name!r} -> {release_name!r}")
    if nbformat_version and nbformat_version < 4:
        repairs.append(f"upgraded from nbformat {nbformat_version}")
    kernel = student_nb.metadata.get("kernelspec", {}).get("name")
    if kernel and kernel != release_nb.metadata.get("kernelspec", {}).get("name"):
        repairs.append(f"kernel {kernel!r} replaced by the release's")

    student_cells = list(student_nb.cells)
    release_ids = [_grade_id(c) for c in release_nb.cells if _grade_id(c)]
    student_ids = list(dict.fromkeys(_grade_id(c) for c in student_cells if _grade_id(c) in release_ids))
    if student_ids != [i for i in release_ids if i in student_ids]:
        repairs.append("cells moved")
    used = set()
    for cell in fixed.cells:
        if not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        answer, how = _find_answer(cell, student_cells, used)
        if answer is None:
            repairs.append(f"{_grade_id(cell)}: answer cell missing, left blank")
            continue
        used.add(id(answer))
        if len(answer.source) > MAX_ANSWER_CHARS:
            problems.append(f"{_grade_id(cell)}: answer cell of {len(answer.source):,} characters "
                            "left out / 답안 셀이 너무 큼")
            continue
        if how != "id":
            repairs.append(f"{_grade_id(cell)}: answer cell {how}")
        if answer.cell_type != cell.cell_type:
            repairs.append(f"{_grade_id(cell)}: {answer.cell_type} cell turned back into {cell.cell_type}")
        cell.source = answer.source
    unknown = sum(1 for c in student_cells if id(c) not in used and c.cell_type == "code"
                  and _grade_id(c) not in release_ids
                  and c.source.strip() not in {r.source.strip() for r in release_nb.cells})
    if unknown:
        repairs.append(f"{unknown} added code cell(s) dropped")
    return Repaired(fixed, repairs, problems)


def repair_file(path, release_path, name, bounds=REPAIR_BOUNDS):
    """``repair`` of the student's notebook at ``path`` (submitted as ``name``) on the release at
    ``release_path``; a large file in a child process within ``bounds``. Raises NotANotebook."""
    size = path.stat().st_size
    if size <= IN_PROCESS_BYTES or size > MAX_BYTES:  # cheap to read, or refused unread
        return _repair_here(path, release_path, name)
    try:
        done = bounded.run(__name__, [path, release_path, name], bounds)
    except bounded.Exceeded as error:
        raise NotANotebook(f"too expensive to read ({size / 2**20:.1f} MiB; the reader {error}) "
                           "/ 읽기 비용이 너무 큼") from None
    if "not_a_notebook" in done:
        raise NotANotebook(done["not_a_notebook"])
    return Repaired(nbformat.from_dict(done["notebook"]), done["repairs"], done["problems"])


def _check_size(size):
    if size > MAX_BYTES:
        raise NotANotebook(f"larger than {MAX_BYTES // 2**20} MB / 파일이 너무 큼")


def _repair_here(path, release_path, name):
    _check_size(Path(path).stat().st_size)
    student_nb, version = read_submission(Path(path).read_bytes())
    return repair(student_nb, nbformat.read(release_path, as_version=4), name, Path(release_path).name, version)


def _main(path, release_path, name):
    """The child of ``repair_file``: the rebuilt notebook, or why the file is not one, as JSON."""
    bounded.limit_this_process()
    try:
        fixed = _repair_here(path, release_path, name)
    except NotANotebook as error:
        bounded.answer({"not_a_notebook": str(error)})
        return
    bounded.answer({"notebook": fixed.notebook, "repairs": fixed.repairs, "problems": fixed.problems})


@dataclass
class SubmissionRepair:
    """What repair did to one student's submission of one assignment."""
    student: str
    repairs: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # files that could not be graded: manual review


def _pick_file(release_name, release_ids, candidates):
    if release_name in candidates:
        return release_name
    def overlap(name):
        if candidates[name].stat().st_size > IN_PROCESS_BYTES:
            return 0  # not parsed here: chosen only when it is the only file
        try:
            nb, _ = read_submission(candidates[name].read_bytes())
        except NotANotebook:
            return -1
        return len({_grade_id(c) for c in nb.cells} & release_ids)
    ranked = sorted(candidates, key=overlap, reverse=True)
    if ranked and (overlap(ranked[0]) > 0 or len(candidates) == 1):
        return ranked[0]
    return None


def _fingerprint(folder):
    """A digest of every file in ``folder`` (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _originals(course, assignment, student):
    """The student's files as last collected, kept in ``Course.originals``.

    Repair replaces the submission folder with its repaired version; a later collect replaces
    it again with what the student submitted anew. The digest of what repair wrote tells the two
    apart, so the originals always follow the latest collected submission.
    """
    folder = course.submission(student, assignment)
    originals = course.originals / student / assignment
    repaired = originals.parent / f"{assignment}.repaired"
    if not originals.exists() or not repaired.exists() or repaired.read_text() != _fingerprint(folder):
        shutil.rmtree(originals, ignore_errors=True)
        shutil.copytree(folder, originals)
    return originals, repaired


def repair_submission(course, assignment, student):
    """Rebuild the student's submission folder from the release and the student's files.

    The folder is replaced only when its rebuild is complete. The student's files are kept untouched in ``Course.originals`` and re-read on every run, so
    repairing twice gives the same result. The release's helper modules replace the student's.
    """
    final = course.submission(student, assignment)
    originals, repaired = _originals(course, assignment, student)
    record = SubmissionRepair(student)
    candidates = {p.name: p for p in originals.glob("*.ipynb")}
    folder = final.with_name(f".{assignment}.repairing")  # swapped in only once complete
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in EXCHANGE_FILES:
        if (originals / name).is_file():
            shutil.copy(originals / name, folder)
    release = course.release / assignment
    for helper in release.iterdir():
        if helper.is_file() and helper.suffix != ".ipynb":
            shutil.copy(helper, folder)
    for release_path in course.release_notebooks(assignment):
        release_nb = nbformat.read(release_path, as_version=4)
        release_ids = {_grade_id(c) for c in release_nb.cells} - {None}
        name = _pick_file(release_path.name, release_ids, candidates)
        if name is None:
            record.problems.append(f"{release_path.name}: no notebook submitted / 제출된 노트북 없음")
            continue
        try:
            fixed = repair_file(candidates.pop(name), release_path, name)
        except NotANotebook as error:
            record.problems.append(f"{name}: {error}")
            continue
        record.repairs.extend(fixed.repairs)
        record.problems.extend(fixed.problems)
        nbformat.write(fixed.notebook, folder / release_path.name)
    shutil.rmtree(final)
    folder.rename(final)
    repaired.write_text(_fingerprint(final))
    return record


if __name__ == "__main__":
    _main(*sys.argv[1:])
