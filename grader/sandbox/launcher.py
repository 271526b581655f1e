"""The sandbox around every kernel that runs student code: bubblewrap, an unprivileged user, rlimits.

What the student's code sees: the system (/usr, /etc) and Python read-only, its own working
folder read-write, an empty /tmp, no network (an empty network namespace; the kernel talks to the
grader over ZMQ's ``ipc`` transport, i.e. Unix sockets in a folder shared with the grader), its own
process tree. Not visible at all: the course (solutions, gradebook, other students), /root, /home.
It runs as an unprivileged user of its own (root is exempt from the process-count limit, and a
uid per grading process keeps one student's fork bomb from using up another's processes), with
limits on memory, CPU time, processes and file size. Wall-clock limits come from the executor.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Integer

SANDBOX_UID_BASE = 100_000


def sandbox_uid(slot=0):
    """A uid of its own for each sandbox this process runs at once (``slot`` tells them apart)."""
    return SANDBOX_UID_BASE + 16 * os.getpid() + slot


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot run here; grading refuses without --no-sandbox."""


def _python_roots():
    """Folders the kernel's Python needs, read-only: the venv and the base interpreter's prefix."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    return sorted({r.resolve() for r in roots})


def _parents(path):
    return [p for p in reversed(Path(path).parents) if str(p) != "/"]


def _tools():
    tools = [shutil.which(p) for p in ("bwrap", "setpriv", "prlimit")]
    if not all(tools):
        raise SandboxUnavailable("bubblewrap (bwrap), setpriv or prlimit not found: "
                                 "run `make setup` as root (apt-get install bubblewrap), "
                                 "or pass --no-sandbox to grade without one")
    return tools


def bwrap_command(writable, pid_namespace=True):
    """bubblewrap's part: the sandbox's view of the machine, ``writable`` folders bound read-write."""
    args = [_tools()[0], "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp",
            # In its own PID namespace the kernel's parent is pid 1, which ipykernel's parent
            # poller takes for "orphaned"; 1 turns the poller off (--die-with-parent does its job).
            "--setenv", "JPY_PARENT_PID", "1"]
    if pid_namespace:
        args.append("--unshare-pid")
    made = set()
    binds = [(p, "--ro-bind") for p in _python_roots()] + [(Path(w), "--bind") for w in writable]
    for path, how in binds:
        for parent in _parents(path):
            if parent not in made and str(parent) != "/tmp" and not str(parent).startswith(("/usr/", "/etc/")):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        args += [how, str(path), str(path)]
    return args


def rlimits(memory_mb=4096, cpu_seconds=600, processes=64, file_mb=64):
    """The per-process limits of student code, by ``resource`` name."""
    return {"RLIMIT_AS": memory_mb * 2**20, "RLIMIT_CPU": cpu_seconds, "RLIMIT_NPROC": processes,
            "RLIMIT_FSIZE": file_mb * 2**20, "RLIMIT_CORE": 0}


def bwrap_prefix(workdir, ipc_dir, memory_mb=4096, cpu_seconds=600, processes=64, file_mb=64,
                 uid=None):
    """The command that, prefixed to a kernel command, runs it in the sandbox as ``uid``."""
    uid = sandbox_uid() if uid is None else uid
    _, setpriv, prlimit = _tools()
    limits = rlimits(memory_mb, cpu_seconds, processes, file_mb)
    return bwrap_command([workdir, ipc_dir]) + [
        "--chdir", str(workdir),
        setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--no-new-privs",
        prlimit, *(f"--{name[7:].lower()}={value}" for name, value in limits.items()), "--"]


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel inside ``bwrap_prefix``, over ZMQ ipc sockets."""

    memory_mb = Integer(4096, help="Address-space limit of the kernel (MB)").tag(config=True)
    cpu_seconds = Integer(600, help="CPU-time limit of the kernel (s)").tag(config=True)
    processes = Integer(64, help="Process (and thread) limit for the sandbox user").tag(config=True)
    file_mb = Integer(64, help="Largest file the kernel may write (MB)").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self._ipc_dir = self._ipc_root() / f"grader-ipc-{os.getpid()}-{id(self)}"
        self._ipc_dir.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self._ipc_dir, sandbox_uid(), sandbox_uid())
        self.ip = str(self._ipc_dir / "kernel")
        self.connection_file = str(self._ipc_dir / "connection.json")

    def _ipc_root(self):
        """Where this kernel's ipc sockets and connection file go (bound into its sandbox)."""
        return Path(tempfile.gettempdir())

    async def _async_pre_start_kernel(self, **kw):
        self._workdir = Path(kw.get("cwd") or os.getcwd()).resolve()
        kw["env"] = dict(kw.get("env") or os.environ, HOME="/tmp", MPLCONFIGDIR="/tmp",
                         IPYTHONDIR="/tmp/.ipython")
        return await super()._async_pre_start_kernel(**kw)

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        if os.geteuid() == 0:  # the kernel runs as the sandbox user and must read it
            os.chown(self.connection_file, sandbox_uid(), sandbox_uid())

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        workdir = self._workdir
        if os.geteuid() == 0:
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, sandbox_uid(), sandbox_uid())
        self._cgroups = Cgroups(self._ipc_dir.name, self.memory_mb, self.processes)
        return self._cgroups.prefix() + bwrap_prefix(workdir, self._ipc_dir, self.memory_mb,
                                                     self.cpu_seconds, self.processes,
                                                     self.file_mb) + cmd

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if hasattr(self, "_cgroups"):
            self._cgroups.remove()
        if not restart:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)


def check():
    """Raise SandboxUnavailable unless a sandboxed process can start on this machine."""
    with tempfile.TemporaryDirectory() as scratch:
        if os.geteuid() == 0:
            os.chown(scratch, sandbox_uid(), sandbox_uid())
        command = bwrap_prefix(Path(scratch), Path(scratch)) + [sys.executable, "-c", "pass"]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap cannot start a sandbox here: {result.stderr.strip()}; "
                                 "pass --no-sandbox to grade without one")


class Cgroups:
    """A cgroup (v1 cpu, memory, pids) of its own for one sandbox, where the machine allows it.

    Rlimits are per process; cgroups bound the sandbox as a whole: a fork bomb gets one fair CPU
    share and one memory budget, so a student next to it keeps running at full speed. Where the
    cgroup folders are not writable, ``available`` is False and only the rlimits apply.
    """

    ROOT = Path("/sys/fs/cgroup")
    LIMITS = {"cpu": {}, "memory": {"memory.limit_in_bytes": "{memory}", "memory.swappiness": "0"},
              "pids": {"pids.max": "{processes}"}}

    def __init__(self, name, memory_mb, processes):
        self.folders = [self.ROOT / controller / "grader" / name for controller in self.LIMITS]
        self.available = os.geteuid() == 0 and all(
            os.access(self.ROOT / c, os.W_OK) for c in self.LIMITS)
        if not self.available:
            return
        try:
            for folder, limits in zip(self.folders, self.LIMITS.values()):
                folder.mkdir(parents=True, exist_ok=True)
                for key, value in limits.items():
                    (folder / key).write_text(value.format(memory=memory_mb * 2**20, processes=processes))
        except OSError:
            self.available = False
            self.remove()

    @classmethod
    def roots(cls):
        """The controllers' grader folders (made if missing), or [] where cgroups are not ours."""
        if os.geteuid() != 0 or not all(os.access(cls.ROOT / c, os.W_OK) for c in cls.LIMITS):
            return []
        roots = [cls.ROOT / c / "grader" for c in cls.LIMITS]
        for root in roots:
            root.mkdir(exist_ok=True)
        return roots

    def procs_files(self):
        """The files a process writes its pid to, to join these cgroups ([] if unavailable)."""
        return [str(folder / "cgroup.procs") for folder in self.folders] if self.available else []

    def prefix(self):
        """A command prefix that moves the process into the cgroups, then execs the rest."""
        if not self.available:
            return []
        moves = "; ".join(f"echo $$ > {procs}" for procs in self.procs_files())
        return ["/bin/sh", "-c", f'{moves}; exec "$@"', "sandbox"]

    def remove(self):
        """Kill whatever is left in the cgroups and delete them."""
        for folder in self.folders:
            procs = folder / "cgroup.procs"
            for _ in range(50):
                try:
                    pids = [int(p) for p in procs.read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
            for _ in range(20):  # the kernel frees a cgroup a moment after its last process exits
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
