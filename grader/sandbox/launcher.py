"""The one sandbox launcher: bubblewrap's view of the machine, the limits, and a uid per process.

What a sandboxed process sees: the system (/usr, /etc) and Python read-only, the folders it is
given, an empty /tmp, no network (an empty network namespace: kernels talk to the grader over
ZMQ's ``ipc`` transport, Unix sockets in a folder shared with the grader). Not visible at all:
the course (solutions, gradebook, other students), /root, /home. The warm sandbox
(``warm.py``) is started with this command; it then forks every process that runs student
code into namespaces of its own, with a /tmp of its own, and confines it
(``grader/inside/warm_sandbox.py``): its own uid from ``UidAllocator``, the ``Limits`` as rlimits
and cgroups, no capabilities.
"""
import fcntl
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .cgroups import Cgroups

log = logging.getLogger("grader")
UID_FIRST, UID_LAST = 100_000, 2**31 - 2


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot run here; grading refuses without --no-sandbox."""


@dataclass(frozen=True)
class Limits:
    """What one sandboxed process may use. Wall-clock limits come from the executor."""
    memory_mb: int = 4096
    cpu_seconds: int = 600
    processes: int = 64
    file_mb: int = 64
    tmp_mb: int = 256  # the job's own /tmp, a tmpfs (its memory counts in the job's cgroup)

    def rlimits(self):
        """The per-process limits, by ``resource`` name."""
        return {"RLIMIT_AS": self.memory_mb * 2**20, "RLIMIT_CPU": self.cpu_seconds,
                "RLIMIT_NPROC": self.processes, "RLIMIT_FSIZE": self.file_mb * 2**20,
                "RLIMIT_CORE": 0}


class UidAllocator:
    """Hands out sandbox uids that are never handed out twice (until the range of 2 billion wraps).

    The next uid lives in a root-only file under a lock, so every grading process of a run, and
    runs side by side, draw from one sequence: no two sandboxes ever share a uid, at any --jobs.
    """

    def __init__(self, state=None):
        self.state = Path(state or ("/run/grader/next-uid" if os.geteuid() == 0 else
                                    Path.home() / ".cache" / "grader" / "next-uid"))

    def next(self):
        self.state.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(os.open(self.state, os.O_RDWR | os.O_CREAT, 0o600), "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            text = f.read().strip()
            uid = int(text) if text.isdigit() and UID_FIRST <= int(text) <= UID_LAST else UID_FIRST
            f.seek(0)
            f.truncate()
            f.write(str(uid + 1 if uid < UID_LAST else UID_FIRST))
        return uid


def _python_roots():
    """Folders the sandbox's Python needs, read-only: the venv and the base interpreter's prefix.

    Each both as named (``sys.executable`` runs by that name) and resolved (a symlinked venv).
    """
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    return sorted(roots | {r.resolve() for r in roots})


def _parents(path):
    return [p for p in reversed(Path(path).parents) if str(p) != "/"]


def bwrap():
    path = shutil.which("bwrap")
    if not path:
        raise SandboxUnavailable("bubblewrap (bwrap) not found: run `make setup` as root "
                                 "(apt-get install bubblewrap), or pass --no-sandbox to grade "
                                 "without one")
    return path


def bwrap_command(writable):
    """bubblewrap's part: the sandbox's view of the machine, ``writable`` folders bound read-write."""
    args = [bwrap(), "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp"]
    made = set()
    binds = [(p, "--ro-bind") for p in _python_roots()] + [(Path(w), "--bind") for w in writable]
    for path, how in binds:
        for parent in _parents(path):
            if parent not in made and str(parent) != "/tmp" and not str(parent).startswith(("/usr/", "/etc/")):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        args += [how, str(path), str(path)]
    return args


def check():
    """Raise SandboxUnavailable unless a job can start here as the warm sandbox starts one.

    That is: in bubblewrap, in new PID, mount, IPC and network namespaces with its own /proc,
    as an unprivileged uid. Says once in the log when the cgroups cannot be used.
    """
    bwrap()
    tools = {name: shutil.which(name) for name in ("setpriv", "unshare")}
    if not all(tools.values()):
        raise SandboxUnavailable("setpriv and unshare (util-linux) not found; pass --no-sandbox "
                                 "to grade without a sandbox")
    uid = UidAllocator().next()
    command = bwrap_command([]) + [
        tools["unshare"], "--pid", "--mount", "--ipc", "--net", "--fork", "--mount-proc",
        tools["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
        sys.executable, "-c", "pass"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap cannot start a sandbox here: {result.stderr.strip()}; "
                                 "pass --no-sandbox to grade without one")
    if not Cgroups.supported():
        log.warning("cgroups v1 (cpu, memory, pids under %s) are not writable here: each sandboxed "
                    "process is bounded by its rlimits alone, not as a whole", Cgroups.ROOT)
