"""Collect: submissions into grader/submitted/<student>/<assignment>/, through nbgrader.

From the nbgrader exchange with ``nbgrader collect``, after setting aside any submission that its
named student does not own (``_set_aside_forged``). From an LMS download (a .zip or a folder)
in two stages, because the download is made of files that students named and filled:

1. Our bounded reader opens the download. Each top-level entry is one **upload** (a Canvas
   file, a folder per student). Its **owner** is the student the scheme regex finds in the
   upload's own name, never in a name inside it: a notebook upload by its path; any other file
   upload (``.zip``) as if it were a notebook of the same stem; a folder as if it held the
   release's notebook. Every notebook inside an upload belongs to its owner whatever it is
   called; its file id is its base name (for a notebook upload, the regex's file_id).
   A ``.zip`` that is an upload, or a file in a folder upload, is opened once; archives inside
   it (nested archives) are never opened. Only notebooks are kept; hidden files and
   ``__MACOSX`` are ignored. Contents are only read into memory, never extracted by path.
2. We write the kept notebooks (our names, mode 0644) into nbgrader's ``extracted`` folder and
   nbgrader's ZipCollectApp moves them into ``submitted/`` (timestamp.txt included), with
   ``StagedFiles`` telling it whose each file is. nbgrader never reads an untrusted archive.

An upload is rejected as a whole and listed for manual review when it has a path that leaves it
(``..``, absolute), a link, device or pipe, an encrypted or unsupported entry, a corrupt zip, an
archive other than zip, more than ``Limits.entries`` entries, more than ``Limits.bytes`` bytes
once expanded, an entry expanding more than ``Limits.ratio`` times (above ``Limits.ratio_floor``
bytes), a name the scheme cannot read, or no notebook; also two uploads giving one student the
same notebook with no timestamps to choose between. Everything else is collected. Only the
instructor's own errors (missing or unreadable download, bad regex) raise ``CollectError``.
"""
import io
import os
import pwd
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.plugins import FileNameCollectorPlugin
from nbgrader.utils import parse_utc
from traitlets import Dict

from ..course import REPO_ROOT

# Matched against "/<path inside the download>" (stock nbgrader: the extracted file's absolute path).
SCHEMES = {
    # Canvas: <name>_[late_]<userid>_<submissionid>_<file>[-<n>].ipynb
    "canvas": r".*/[^/_]+_(?:late_)?(?P<student_id>\d+)_\d+_(?P<file_id>[^/]+?)(?:-\d+)?\.ipynb$",
    # one folder per student: <student>/<file>.ipynb
    "folders": r".*/(?P<student_id>[^/]+)/(?P<file_id>[^/]+)\.ipynb$",
}

MAX_EXCHANGE_ENTRIES = 1000  # files in one exchange submission before it is set aside unread
REFUSED_ARCHIVES = (".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".zst")
PLAIN_STUDENT_ID = re.compile(r"\w[\w.@+-]{0,99}")
PLAIN_FILE_ID = re.compile(r"\w[\w .()+-]{0,99}")


class CollectError(Exception):
    """The instructor's input is unusable (missing path, bad pattern)."""


class Rejected(Exception):
    """One upload cannot be collected; the message is the reason shown to the instructor."""


@dataclass(frozen=True)
class Limits:
    """Bounds on one upload, every entry in it (and in its zip) counted."""
    bytes: int = 64 * 2**20
    entries: int = 500
    ratio: int = 100
    ratio_floor: int = 2**20  # smaller entries may compress as well as they like


@dataclass(frozen=True)
class Rejection:
    upload: str          # the upload's name in the download
    student: str | None  # its owner, when its name says
    reason: str


@dataclass(frozen=True)
class Collection:
    students: list                                # collected in this run, sorted
    rejected: list = field(default_factory=list)  # [Rejection], for manual review


@dataclass(frozen=True)
class _Entry:
    parts: tuple        # path inside the upload
    size: int           # bytes once expanded
    packed: int | None  # bytes in its zip (None: a plain file)
    read: object        # () -> bytes, or None for a folder


@dataclass(frozen=True)
class _Notebook:
    owner: str
    file_id: str
    timestamp: str | None
    content: bytes


class _Budget:
    """What one upload may still expand to."""

    def __init__(self, limits):
        self.limits, self.bytes, self.entries = limits, limits.bytes, limits.entries

    def spend(self, size, packed=None):
        self.entries -= 1
        self.bytes -= size
        if self.entries < 0:
            raise Rejected(f"more than {self.limits.entries} entries")
        if self.bytes < 0:
            raise Rejected(f"expands to more than {self.limits.bytes} bytes")
        if packed is not None and size > self.limits.ratio_floor and size > packed * self.limits.ratio:
            raise Rejected(f"an entry expands {size // max(packed, 1)} times (limit {self.limits.ratio})")


def _parts(name):
    """The components of an archive member's name; raises for names that leave the upload."""
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise Rejected(f"absolute path {name!r}")
    parts = tuple(p for p in re.split(r"[/\\]", name) if p not in ("", "."))
    if ".." in parts:
        raise Rejected(f"path leaves the upload: {name!r}")
    return parts


def _kind(name):
    lower = name.lower()
    if lower.endswith(".ipynb"):
        return "notebook"
    if lower.endswith(".zip"):
        return "zip"
    return "refused" if lower.endswith(REFUSED_ARCHIVES) else "other"


def _ignored(parts):
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


# --- zip members: checked before use, read into memory, never past their declared size ---

def _check_member(info):
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise Rejected(f"{info.filename!r} is a link or special file")
    if info.flag_bits & 0x1:
        raise Rejected(f"{info.filename!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Rejected(f"{info.filename!r} uses an unsupported compression")


def _read_member(archive, info):
    """zipfile stops at the declared size and checks the CRC; we check the length."""
    try:
        with archive.open(info) as member:
            data = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise Rejected(f"corrupt zip entry {info.filename!r}: {error}") from None
    if len(data) != info.file_size:
        raise Rejected(f"{info.filename!r} is not the size it declares")
    return data


def _zip_entries(archive, infos, strip=0):
    """Each member as an _Entry (``strip`` leading components dropped), checked as it goes."""
    for info in infos:
        parts = _parts(info.filename)[strip:]
        _check_member(info)
        if info.is_dir():
            yield _Entry(parts, info.file_size, info.compress_size, None)
        elif not parts:
            raise Rejected(f"a file with no name: {info.filename!r}")
        else:
            yield _Entry(parts, info.file_size, info.compress_size,
                         lambda info=info: _read_member(archive, info))


def _zip_notebooks(data, budget):
    """(base name, bytes) of each notebook in a student's .zip; archives in it stay closed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise Rejected(f"corrupt zip: {error}") from None
    with archive:
        notebooks = []
        for entry in _zip_entries(archive, archive.infolist()):
            budget.spend(entry.size, entry.packed)
            if entry.read and _kind(entry.parts[-1]) == "notebook" and not _ignored(entry.parts):
                notebooks.append(entry)
        return [(entry.parts[-1], entry.read()) for entry in notebooks]


# --- the download: uploads by top-level name, their entries listed lazily ---

def _zip_uploads(source):
    """{top-level name: (is_folder, entries())} of a download zip."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as error:
        raise CollectError(f"cannot read the download {source}: {error}") from None
    members = {}
    for info in archive.infolist():
        top = re.split(r"[/\\]", info.filename)[0] or info.filename  # absolute: its own upload
        members.setdefault(top, []).append(info)
    uploads = {}
    for top, infos in members.items():
        is_folder = any(info.filename != top for info in infos)
        uploads[top] = (is_folder, lambda infos=infos, strip=int(is_folder): _zip_entries(archive, infos, strip))
    return uploads


def _folder_uploads(source):
    """The same for a download folder, walked without following links."""
    return {entry.name: (stat.S_ISDIR(entry.lstat().st_mode), lambda top=entry: _folder_entries(top))
            for entry in sorted(source.iterdir())}


def _folder_entries(top):
    pending = [top]
    while pending:
        path = pending.pop()
        mode = path.lstat().st_mode
        parts = path.relative_to(top).parts if path != top else (top.name,)
        if stat.S_ISDIR(mode):
            pending.extend(sorted(path.iterdir(), reverse=True))
            yield _Entry(parts, 0, None, None)
        elif stat.S_ISREG(mode):
            size = path.lstat().st_size
            yield _Entry(parts, size, None, lambda path=path, size=size: _read_file(path, size))
        else:
            raise Rejected(f"{'/'.join(parts)!r} is a link or special file")


def _read_file(path, size):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        data = f.read(size + 1)
    if len(data) != size:
        raise Rejected(f"{path.name!r} changed while it was read")
    return data


# --- ownership ---

class _Scheme:
    """The instructor's regex, applied only to names the LMS gave (the uploads' own names)."""

    def __init__(self, pattern, release_names):
        try:
            self.regex = re.compile(pattern)
        except re.error as error:
            raise CollectError(f"bad file-name pattern {pattern!r}: {error}") from None
        if not {"student_id", "file_id"} <= set(self.regex.groupindex):
            raise CollectError("the pattern must define (?P<student_id>...) and (?P<file_id>...)")
        self.release_names = release_names

    def owner(self, name, is_folder):
        """The regex's groups for an upload's own name; ``student_id`` is the owner."""
        if is_folder:
            probes = [f"/{name}/{release}" for release in self.release_names]
        elif _kind(name) == "notebook":
            probes = [f"/{name}"]
        else:
            stem = re.sub(r"(\.tar)?\.[^.]*$", "", name)
            probes = [f"/{stem}.ipynb"]
        for probe in probes:
            found = self.regex.match(probe)
            if found and found["student_id"]:
                return found.groupdict()
        raise Rejected("its name does not fit the scheme")


def _checked(groups):
    student, timestamp = groups["student_id"], groups.get("timestamp") or None
    if not PLAIN_STUDENT_ID.fullmatch(student):
        raise Rejected(f"student id {student!r} is not a plain name")
    if timestamp is not None:
        try:
            parse_utc(timestamp)
        except (ValueError, OverflowError):
            raise Rejected(f"unreadable timestamp {timestamp!r}") from None
    return groups


def _notebooks_of(name, is_folder, entries, scheme, budget):
    """The notebooks of one upload, all owned by the student its name gives."""
    listed = []
    for entry in entries:  # every entry checked (path, type, size) before anything is read
        budget.spend(entry.size, entry.packed)
        if entry.read and not _ignored(entry.parts):
            listed.append(entry)
    groups = _checked(scheme.owner(name, is_folder))
    kept = []
    for entry in listed:
        base = entry.parts[-1]
        kind = _kind(base)
        if kind == "notebook":
            kept.append((base[:-6] if is_folder else groups["file_id"], entry.read()))
        elif kind == "zip":
            kept.extend((inner[:-6], data) for inner, data in _zip_notebooks(entry.read(), budget))
        elif kind == "refused":
            raise Rejected(f"{base!r} is not a zip archive; only .zip and .ipynb are read")
    if not kept:
        raise Rejected("no notebook in it (archives inside a .zip are not opened)")
    ids = [file_id for file_id, _ in kept]
    for file_id in ids:
        if not PLAIN_FILE_ID.fullmatch(file_id):
            raise Rejected(f"notebook name {file_id!r} is not a plain name")
        if ids.count(file_id) > 1:
            raise Rejected(f"two notebooks named {file_id}.ipynb")
    return [_Notebook(groups["student_id"], file_id, groups.get("timestamp") or None, data)
            for file_id, data in kept]


def _owner_or_none(scheme, name, is_folder):
    try:
        return scheme.owner(name, is_folder)["student_id"]
    except Rejected:
        return None


def _ambiguous(notebooks_by_upload):
    """Rejections for uploads that give one student the same notebook with no timestamp to choose."""
    copies = {}
    for upload, notebooks in notebooks_by_upload.items():
        for nb in notebooks:
            copies.setdefault((nb.owner, nb.file_id), []).append((upload, nb))
    rejected = {}
    for (owner, file_id), found in copies.items():
        if len(found) > 1 and any(nb.timestamp is None for _, nb in found):
            for upload, _ in found:
                rejected[upload] = Rejection(
                    upload, owner, f"another upload also gives {owner} {file_id}.ipynb, with no timestamps")
    return rejected


# --- nbgrader does the rest ---

class StagedFiles(FileNameCollectorPlugin):
    """nbgrader's collector for files we staged: whose each file is comes from our table."""

    table = Dict(help="staged path -> {student_id, file_id, timestamp}").tag(config=False)

    def collect(self, submitted_file):
        return self.table.get(submitted_file)


def extracted_folder(app):
    """The folder ZipCollectApp's ``process_extracted_files`` collects from, from its public
    settings (``collect_directory_structure`` filled as nbgrader documents it)."""
    structure = app.collect_directory_structure.format(
        downloaded=app.downloaded_directory, assignment_id=app.coursedir.assignment_id,
        collect_step=app.extracted_directory)
    return Path(app.coursedir.root, structure)


def _stage_and_collect(course, assignment, notebooks):
    """Write the notebooks ourselves and let nbgrader's ZipCollectApp move them into place."""
    from nbgrader.apps import ZipCollectApp
    from nbgrader.coursedir import CourseDirectory
    config = course.config(ZipCollectApp={"force": True, "log_level": "ERROR"})
    app = ZipCollectApp(config=config)
    app.coursedir = CourseDirectory(config=config)
    app.coursedir.assignment_id = assignment
    staged = extracted_folder(app)
    shutil.rmtree(staged, ignore_errors=True)
    table = {}
    for number, nb in enumerate(notebooks):
        path = staged / str(number) / f"{nb.file_id}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(nb.content)
        path.chmod(0o644)
        table[str(path)] = {"student_id": nb.owner, "file_id": f"{nb.file_id}.ipynb",
                            "timestamp": nb.timestamp}
    app.collector_plugin_inst = StagedFiles(parent=app, table=table)
    if table:
        app.process_extracted_files()


def from_lms(course, assignment, source, scheme="canvas", limits=Limits()):
    """Collect an LMS download (.zip or folder); returns a Collection."""
    source = Path(source)
    if not source.exists():
        raise CollectError(f"no such file or folder: {source}")
    release_names = [p.name for p in course.release_notebooks(assignment)] or ["submission.ipynb"]
    pattern = _Scheme(SCHEMES.get(scheme, scheme), release_names)
    uploads = _folder_uploads(source) if source.is_dir() else _zip_uploads(source)
    kept, rejected = {}, {}
    for name, (is_folder, entries) in sorted(uploads.items()):
        if name != ".." and _ignored((name,)):  # .DS_Store, __MACOSX: the instructor's machine made them
            continue
        try:
            kept[name] = _notebooks_of(name, is_folder, entries(), pattern, _Budget(limits))
        except Exception as error:  # noqa: BLE001 -- whatever an upload does costs only that upload
            reason = str(error) if isinstance(error, Rejected) else f"unreadable ({type(error).__name__}: {error})"
            rejected[name] = Rejection(name, _owner_or_none(pattern, name, is_folder), reason)
    rejected.update(_ambiguous(kept))
    notebooks = [nb for name, nbs in kept.items() if name not in rejected for nb in nbs]
    _stage_and_collect(course, assignment, notebooks)
    return Collection(sorted({nb.owner for nb in notebooks}),
                      sorted(rejected.values(), key=lambda r: r.upload))


def _foreign(folder, uid):
    """Why ``folder`` (an inbound submission) is not its named student's own work, or ''."""
    entries = [folder]
    for path in folder.rglob("*"):
        entries.append(path)
        if len(entries) > MAX_EXCHANGE_ENTRIES:
            return f"more than {MAX_EXCHANGE_ENTRIES} files"
    strangers = sorted({p.lstat().st_uid for p in entries} - {uid})
    return f"written by uid {strangers}, not the student's ({uid})" if strangers else ""


def _set_aside_forged(course, assignment):
    """Move out of inbound every submission not owned by the OS user it names; [Rejection].

    nbgrader's inbound is writable by every student and each submission folder is 0777, so a
    student could write a folder in another's name, or into another's folder. Where student ids
    are OS users (a hub), ownership tells: only folders and files the named student owns stay.
    On one machine shared by one user nothing can be told apart, and nothing is moved.
    """
    inbound = course.exchange / course.course_id / "inbound"
    aside = course.grader / "set_aside" / assignment
    rejected = []
    for folder in sorted(inbound.glob(f"*+{assignment}+*")) if inbound.is_dir() else []:
        student = folder.name.split("+", 1)[0]
        try:
            uid = pwd.getpwnam(student).pw_uid
        except KeyError:
            continue
        reason = _foreign(folder, uid) if folder.is_dir() and not folder.is_symlink() else "not a folder"
        if reason:
            aside.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(aside / folder.name))
            rejected.append(Rejection(folder.name, student, f"set aside in {aside}: {reason}"))
    return rejected


def from_exchange(course, assignment):
    """Run ``nbgrader collect`` (latest submission of each student), forged submissions set aside."""
    rejected = _set_aside_forged(course, assignment)
    # which submission counts: grader/schedule.py (each student's own due date)
    result = course.nbgrader("collect", assignment, "--update",
                             "--ExchangeFactory.collect=grader.schedule.CollectBeforeDue",
                             check=False, env={"PYTHONPATH": str(REPO_ROOT)})
    if result.returncode != 0:
        raise CollectError(f"nbgrader collect failed:\n{result.stderr[-2000:]}")
    return Collection(students(course, assignment), rejected)


def students(course, assignment):
    """Students with a submission folder for ``assignment``."""
    if not course.submitted.exists():
        return []
    return sorted(p.parent.name for p in course.submitted.glob(f"*/{assignment}") if p.is_dir())
