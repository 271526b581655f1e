"""The grader's side of the warm fork server: one per grading process, started on first use.

A fresh kernel costs 2.5-3 s of CPU, nearly all of it ``import torch``. The fork server
(``grader/inside/forkserver.py``) runs in the bubblewrap sandbox of ``launcher`` with torch
already imported and never runs student code itself; each job (a kernel, a verification run)
is a forked child in PID, mount, IPC and network namespaces of its own, with an empty private
/tmp holding its home, IPython and matplotlib folders (``JOB_ENV``), that confines itself before
it runs anything. Jobs' folders live in one folder bound into the sandbox, outside /tmp, each
owned by its job's uid, 0700. The server's sandbox has no PID namespace of its own, so the pid a
job is known by here is real: the grader signals and kills the job (its pid 1) by it.
"""
import atexit
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import launcher
from .cgroups import Cgroups

PROGRAM = Path(__file__).resolve().parent.parent / "inside" / "forkserver.py"
START_TIMEOUT = 120  # seconds for the server to import torch and say it is ready
REPLY_TIMEOUT = 30   # seconds for one fork's reply

RUNS_IN = "/var/tmp"  # not /tmp: each job's own /tmp would hide its folder
JOB_ENV = {"HOME": "/tmp", "TMPDIR": "/tmp", "IPYTHONDIR": "/tmp/.ipython",
           "MPLCONFIGDIR": "/tmp/.matplotlib", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


class ForkServer:
    """One warm sandboxed server; ``instance()`` is this process's, safe to call from any thread."""

    _instance = None
    _instance_lock = threading.Lock()

    @classmethod
    def instance(cls):
        with cls._instance_lock:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = cls()
            return cls._instance

    def __init__(self):
        self.runs = Path(tempfile.mkdtemp(prefix="grader-runs-", dir=RUNS_IN))
        os.chmod(self.runs, 0o711)
        command = launcher.bwrap_command([self.runs, *Cgroups.roots()])
        self.process = subprocess.Popen(
            command + ["--chdir", str(self.runs), sys.executable, "-I", "-c", PROGRAM.read_text()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lock = threading.Lock()
        self.ids = itertools.count()
        self.uids = launcher.UidAllocator()
        self._buffer = b""
        ready = self._read_line(START_TIMEOUT)
        if not isinstance(ready, dict) or "ready" not in ready:
            self.process.kill()
            raise launcher.SandboxUnavailable(f"the warm fork server did not start: {ready!r}")
        atexit.register(self.close)

    def _read_line(self, timeout):
        """The server's next reply (a dict), or None when it says nothing well-formed in time."""
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return None

    def close(self):
        """Stop the server (it ends when its stdin closes) and remove the run folders."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
        shutil.rmtree(self.runs, ignore_errors=True)

    def new_job(self):
        """(uid, folder) for one job: a uid never used before, a fresh private folder it owns."""
        uid = self.uids.next()
        folder = Path(tempfile.mkdtemp(prefix="job-", dir=self.runs))
        os.chown(folder, uid, uid)
        os.chmod(folder, 0o700)
        return uid, folder

    def fork(self, cwd, uid, limits, cgroups, env, **job):
        """Fork a confined job in ``cwd`` as ``uid``; returns its pid (pid 1 of its namespace).

        limits: a ``launcher.Limits``; cgroups: a ``Cgroups``; job: ``connection_file`` (a
        kernel) or ``program`` with ``stdin``/``stdout`` file paths.
        """
        with self.lock:
            request = {"id": next(self.ids), "cwd": str(cwd), "uid": uid,
                       "rlimits": limits.rlimits(), "tmp_mb": limits.tmp_mb,
                       "cgroups": cgroups.procs_files(), "env": env, **job}
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            reply = self._read_line(REPLY_TIMEOUT)
        if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int):
            raise launcher.SandboxUnavailable(f"the warm fork server did not fork: {reply!r}")
        return reply["pid"]


class ForkedProcess:
    """What jupyter_client's LocalProvisioner needs of a Popen, for a child the server forked."""

    stdin = stdout = stderr = None  # the child's descriptors are files or /dev/null

    def __init__(self, pid):
        self.pid, self.returncode = pid, None

    def poll(self):
        if self.returncode is None:
            try:
                with open(f"/proc/{self.pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, ProcessLookupError, IndexError):
                state = "X"
            if state in ("Z", "X"):
                self.returncode = -9
        return self.returncode

    def wait(self, timeout=None):
        """Wait up to ``timeout`` seconds (forever if None) for the child to end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum):
        """Signal the job unless it is gone (as ``Popen.send_signal`` does)."""
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self):
        """Kill the job: its pid 1 and so everything in its PID namespace."""
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass

    def terminate(self):
        self.send_signal(15)
