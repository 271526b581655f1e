"""Collecting into grader/submitted: from the nbgrader exchange and from LMS downloads, hostile ones too.

Every hostile upload sits beside honest ones: the hostile one is listed for review with its reason,
the honest ones are collected intact, and nothing one upload holds is filed under another student.
"""
import io
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import nbformat
import pytest

from grader.demo import simulate
from grader.steps import collect
from grader.course import Course

A, NB = "a1_backprop", "backprop"
SMALL = collect.Limits(bytes=2 * 2**20, entries=20, ratio=50, ratio_floor=64 * 2**10)


@pytest.fixture
def course(tmp_path, a1_generated):
    return a1_generated(tmp_path / "course")


@pytest.fixture
def released(tmp_path):
    """A course copy with the committed release: enough for collecting from an LMS download."""
    return Course().copy_to(tmp_path / "course")


def notebook(author):
    """A small notebook whose only cell says who wrote it."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"author = {author!r}")])
    return nbformat.writes(nb).encode()


def author_of(path):
    return nbformat.read(path, as_version=4).cells[0].source


def zipped(*members):
    """A zip's bytes; members are (name, data) or ready zipfile.ZipInfo with data."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


def member(name, data, mode):
    """A member carrying Unix mode bits (a link, a set-uid file...)."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info, data


def canvas(name, uid):
    return f"{name}_{uid}_{50000 + uid % 1000}_backprop"


def hostile_class():
    """{upload name: bytes} of a Canvas download: honest students beside each hostile upload."""
    alice = canvas("alice", 10001)
    return {
        f"{alice}.ipynb": notebook("alice"),
        f"{canvas('bob', 10002)}.zip": zipped(("work/backprop.ipynb", notebook("bob")),
                                              (".ipynb_checkpoints/backprop-checkpoint.ipynb", b"x"),
                                              ("work/helper.py", b"print('hi')")),
        f"{canvas('carol', 10003)}.ipynb.gz": b"\x1f\x8b\x08\x00" + os.urandom(64),
        f"{canvas('dave', 10004)}.zip": b"PK\x03\x04 this is not a zip",
        f"{canvas('eve', 10005)}.zip": zipped(("backprop.ipynb", notebook("eve")),
                                              ("../../evil.ipynb", notebook("eve"))),
        f"{canvas('frank', 10006)}.zip": zipped(("backprop.ipynb", notebook("frank")),
                                                (zipfile.ZipInfo("/etc/evil.ipynb"), notebook("frank"))),
        f"{canvas('grace', 10007)}.zip": zipped(("backprop.ipynb", notebook("grace")),
                                                member("link.ipynb", "/etc/shadow", 0o120777)),
        f"{canvas('heidi', 10008)}.zip": zipped(member("backprop.ipynb", notebook("heidi"), 0o104755)),
        f"{canvas('ivan', 10009)}.zip": zipped(("backprop.ipynb", os.urandom(3 * 2**20))),
        f"{canvas('judy', 10010)}.zip": zipped(*[(f"f{i}.txt", b"x") for i in range(30)],
                                               ("backprop.ipynb", notebook("judy"))),
        f"{canvas('mallory', 10011)}.zip": zipped(
            (f"{alice}.zip", zipped((f"{alice}.ipynb", notebook("mallory"))))),
        f"{canvas('oscar', 10012)}.zip": zipped((f"{alice}.ipynb", notebook("oscar")),
                                                ("backprop.ipynb", notebook("oscar"))),
        f"{canvas('peggy', 10013)}.ipynb": notebook("peggy"),
        f"{canvas('peggy', 10013)}-1.ipynb": notebook("peggy again"),
        f"{canvas('ratio', 10014)}.zip": zipped(("backprop.ipynb", bytes(2**20))),
        f"{canvas('walter', 10015)}.ipynb": notebook("walter"),
        f"{canvas('trent', 10016)}.zip": zipped(("backprop.ipynb", notebook("trent")),
                                                member("tty.ipynb", b"", 0o020644)),
    }


REJECTED = {  # upload -> (student, words in the reason)
    f"{canvas('carol', 10003)}.ipynb.gz": ("10003", "not a zip archive"),
    f"{canvas('dave', 10004)}.zip": ("10004", "corrupt zip"),
    f"{canvas('eve', 10005)}.zip": ("10005", "leaves the upload"),
    f"{canvas('frank', 10006)}.zip": ("10006", "absolute path"),
    f"{canvas('grace', 10007)}.zip": ("10007", "link or special file"),
    f"{canvas('ivan', 10009)}.zip": ("10009", "expands to more than"),
    f"{canvas('judy', 10010)}.zip": ("10010", "more than 20 entries"),
    f"{canvas('mallory', 10011)}.zip": ("10011", "no notebook"),
    f"{canvas('peggy', 10013)}.ipynb": ("10013", "another upload also gives 10013 backprop.ipynb"),
    f"{canvas('peggy', 10013)}-1.ipynb": ("10013", "another upload also gives 10013 backprop.ipynb"),
    f"{canvas('ratio', 10014)}.zip": ("10014", "times (limit 50)"),
    f"{canvas('trent', 10016)}.zip": ("10016", "link or special file"),
    "..": (None, "leaves the upload"),
}


def write_download(path, uploads, extra=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in uploads.items():
            zf.writestr(name, data)
        for name, data in extra:
            zf.writestr(name, data)
    return path


def test_hostile_uploads_cost_only_their_owners(released, tmp_path):
    download = write_download(tmp_path / "canvas.zip", hostile_class(),
                              extra=[("../escape.ipynb", notebook("nobody")),
                                     ("__MACOSX/._x.ipynb", b"resource fork")])
    result = collect.from_lms(released, A, download, "canvas", limits=SMALL)

    assert result.students == ["10001", "10002", "10008", "10012", "10015"]
    assert {r.upload: r.student for r in result.rejected} == {u: s for u, (s, _) in REJECTED.items()}
    for r in result.rejected:
        assert REJECTED[r.upload][1] in r.reason, r
    submitted = released.submitted
    assert sorted(p.name for p in submitted.iterdir()) == result.students
    for student, author in [("10001", "alice"), ("10002", "bob"), ("10008", "heidi"), ("10015", "walter")]:
        files = sorted(p.name for p in (submitted / student / A).iterdir())
        assert files == [f"{NB}.ipynb"], (student, files)
        assert author_of(submitted / student / A / f"{NB}.ipynb") == f"author = {author!r}"
    # oscar's file named like alice's submission is oscar's, under oscar
    oscar = submitted / "10012" / A
    assert sorted(p.name for p in oscar.iterdir()) == [f"{canvas('alice', 10001)}.ipynb", f"{NB}.ipynb"]
    assert {author_of(p) for p in oscar.iterdir()} == {"author = 'oscar'"}
    for path in submitted.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert not any(p.is_symlink() for p in released.root.rglob("*"))


def test_a_real_size_zip_bomb_is_refused_by_the_default_limits_without_expanding_it(released, tmp_path):
    bomb = zipped(("backprop.ipynb", bytes(256 * 2**20)))
    assert len(bomb) < 2**20
    honest = notebook("alice")
    download = write_download(tmp_path / "canvas.zip", {f"{canvas('bomb', 10002)}.zip": bomb,
                                                        f"{canvas('alice', 10001)}.ipynb": honest})
    result = collect.from_lms(released, A, download)
    assert result.students == ["10001"]
    assert [(r.student, "expands" in r.reason) for r in result.rejected] == [("10002", True)]


def test_folder_download_walks_no_links_and_files_inner_names_under_the_uploader(released, tmp_path):
    download = tmp_path / "download"
    for student in ("kim", "lee"):
        (download / student).mkdir(parents=True)
        (download / student / f"{NB}.ipynb").write_bytes(notebook(student))
    (download / "mallet" / "lee").mkdir(parents=True)
    (download / "mallet" / "lee" / f"{NB}.ipynb").write_bytes(notebook("mallet"))
    (download / "sym").symlink_to("/etc")
    (download / "pipe").mkdir()
    os.mkfifo(download / "pipe" / f"{NB}.ipynb")
    (download / "zipper").mkdir()
    (download / "zipper" / "submission.zip").write_bytes(zipped((f"{NB}.ipynb", notebook("zipper"))))

    result = collect.from_lms(released, A, download, "folders")

    assert result.students == ["kim", "lee", "mallet", "zipper"]
    assert [(r.upload, r.student) for r in result.rejected] == [("pipe", "pipe"), ("sym", None)]
    for student in result.students:
        assert author_of(released.submitted / student / A / f"{NB}.ipynb") == f"author = {student!r}"


def test_timestamps_choose_between_uploads_as_nbgrader_does(released, tmp_path):
    scheme = r".*/(?P<student_id>[a-z]+)_(?P<timestamp>\d{8}T\d{6})_(?P<file_id>\w+)\.ipynb$"
    download = write_download(tmp_path / "lms.zip", {
        "sam_20261101T100000_backprop.ipynb": notebook("sam old"),
        "sam_20261102T100000_backprop.ipynb": notebook("sam new"),
        "tom_99999999T999999_backprop.ipynb": notebook("tom"),
    })
    result = collect.from_lms(released, A, download, scheme)
    assert result.students == ["sam"]
    assert [(r.student, "timestamp" in r.reason) for r in result.rejected] == [("tom", True)]
    assert author_of(released.submitted / "sam" / A / f"{NB}.ipynb") == "author = 'sam new'"
    assert (released.submitted / "sam" / A / "timestamp.txt").read_text().startswith("2026-11-02 10:00:00")


def test_the_cli_lists_rejected_uploads_and_exits_0(released, tmp_path):
    download = write_download(tmp_path / "canvas.zip", {
        f"{canvas('alice', 10001)}.ipynb": notebook("alice"),
        f"{canvas('dave', 10004)}.zip": b"not a zip",
    })
    result = subprocess.run([sys.executable, "-m", "grader", "--course", str(released.root), "collect", A,
                             "--from", str(download)], capture_output=True, text=True, cwd=Course().root)
    assert result.returncode == 0, result.stderr
    assert "1 submissions" in result.stdout
    assert f"for manual review: {canvas('dave', 10004)}.zip (student 10004): corrupt zip" in result.stdout


@pytest.mark.slow
def test_exchange_submissions_are_collected_by_the_cli(course, tmp_path):
    course.nbgrader("release_assignment", A)
    bindir = os.path.dirname(sys.executable)
    for student in ("alice", "bob"):
        home = tmp_path / student
        shutil.copytree(course.release / A, home / A)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        subprocess.run([os.path.join(bindir, "nbgrader"), "submit", A, "--course=backprop",
                        f"--Exchange.root={course.exchange}",
                        f"--CourseDirectory.student_id={student}"],
                       cwd=home, env=env, check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "grader", "--course", str(course.root), "collect", A,
                             "--exchange"], capture_output=True, text=True, cwd=Course().root)
    assert result.returncode == 0, result.stderr
    assert collect.students(course, A) == ["alice", "bob"]
    assert (course.submitted / "bob" / A / f"{NB}.ipynb").exists()


def test_folder_per_student_download_is_collected(released, tmp_path):
    download = tmp_path / "download"
    correct = simulate.solution_answers(released.solutions / A / f"{NB}.ipynb")
    for student in ("kim", "lee"):
        (download / student).mkdir(parents=True)
        nbformat.write(simulate.build_submission(released.release / A / f"{NB}.ipynb", correct),
                       download / student / f"{NB}.ipynb")
    assert collect.from_lms(released, A, download, "folders") == collect.Collection(["kim", "lee"])


def test_bad_pattern_and_missing_download_are_the_instructors_errors(released, tmp_path):
    with pytest.raises(collect.CollectError, match="student_id"):
        collect.from_lms(released, A, tmp_path, r".*/(?P<file_id>.+)\.ipynb")
    with pytest.raises(collect.CollectError, match="bad file-name pattern"):
        collect.from_lms(released, A, tmp_path, r"(?P<student_id>")
    with pytest.raises(collect.CollectError, match="no such file"):
        collect.from_lms(released, A, tmp_path / "nope.zip")
    (tmp_path / "not.zip").write_bytes(b"garbage")
    with pytest.raises(collect.CollectError, match="cannot read the download"):
        collect.from_lms(released, A, tmp_path / "not.zip")
    result = subprocess.run([sys.executable, "-m", "grader", "--course", str(released.root), "collect", A,
                             "--from", str(tmp_path / "nope.zip")], capture_output=True, text=True,
                            cwd=Course().root)
    assert result.returncode == 1 and "no such file" in result.stderr


def test_notebooks_are_staged_where_nbgrader_collects_from_under_any_folder_structure(released, tmp_path):
    """``collect.extracted_folder`` rebuilds ZipCollectApp's folder from its public settings
    (nbgrader 0.9.6 keeps that in the private ``_format_collect_path``): on an nbgrader that
    reads its extracted files elsewhere, nothing is collected here first."""
    with open(released.grader / "nbgrader_config.py", "a") as config:
        config.write('\nc.ZipCollectApp.collect_directory_structure = "{downloaded}/{collect_step}-{assignment_id}"\n')
    course = Course(released.root)
    download = tmp_path / "download"
    (download / "kim").mkdir(parents=True)
    (download / "kim" / f"{NB}.ipynb").write_bytes(notebook("kim"))
    assert collect.from_lms(course, A, download, "folders") == collect.Collection(["kim"])
    assert author_of(course.submission("kim", A) / f"{NB}.ipynb") == "author = 'kim'"
    assert (course.downloaded / f"extracted-{A}" / "0" / f"{NB}.ipynb").exists()
