"""The warm sandbox: one sandboxed process per grading run that forks every job, and its clients.

A fresh kernel costs 2.5-3 s of CPU, nearly all of it ``import torch``. The warm sandbox
(``grader/inside/warm_sandbox.py``) runs in the bubblewrap sandbox of ``launcher`` with torch
already imported and never runs student code itself; each job (a kernel, a verification run)
is a forked child in PID, mount, IPC and network namespaces of its own, with an empty private
/tmp holding its home, IPython and matplotlib folders (``JOB_ENV``), that confines itself before
it runs anything. Jobs' folders live in one folder bound into the sandbox, outside /tmp, each
owned by its job's uid, 0700. The server's sandbox has no PID namespace of its own, so the pid a
job is known by here is real: the grader signals and kills the job (its pid 1) by it.

The run starts one ``WarmSandbox``; each of its worker processes is told its socket once
(``use``) and asks it for jobs through a ``ForkClient`` (``client``): torch is imported once per
run inside the sandbox, not once per worker.
"""
import atexit
import itertools
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import launcher
from .cgroups import Cgroups

PROGRAM = Path(__file__).resolve().parent.parent / "inside" / "warm_sandbox.py"
START_TIMEOUT = 120  # seconds for the server to import torch and say it is ready
REPLY_TIMEOUT = 30   # seconds for one fork's reply

RUNS_IN = "/var/tmp"  # not /tmp: each job's own /tmp would hide its folder
JOB_ENV = {"HOME": "/tmp", "TMPDIR": "/tmp", "IPYTHONDIR": "/tmp/.ipython",
           "MPLCONFIGDIR": "/tmp/.matplotlib", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


class WarmSandbox:
    """The warm sandboxed process: started once per grading run, shared by its workers.

    Creating one returns at once (the server imports torch meanwhile); ``wait_ready`` waits for it.
    The server listens on ``socket``, 0600 in a root-only folder inside ``runs``; it ends when
    this object closes its stdin.
    """

    def __init__(self):
        self.runs = Path(tempfile.mkdtemp(prefix="grader-runs-", dir=RUNS_IN))
        os.chmod(self.runs, 0o711)
        control = self.runs / "control"
        control.mkdir(mode=0o700)
        self.socket = control / "fork.sock"
        command = launcher.bwrap_command([self.runs, *Cgroups.roots()])
        self.process = subprocess.Popen(
            command + ["--chdir", str(self.runs), sys.executable, "-I", "-c", PROGRAM.read_text(),
                       str(self.socket)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._ready = None
        atexit.register(self.close)

    def wait_ready(self):
        """Return once the server listens; SandboxUnavailable if it does not within START_TIMEOUT."""
        if self._ready is None:
            reply = _read_json_line(self.process.stdout.fileno(), START_TIMEOUT)
            self._ready = isinstance(reply, dict) and "ready" in reply
            if not self._ready:
                self.process.kill()
                self._failure = f"the warm sandbox did not start: {reply!r}"
        if not self._ready:
            raise launcher.SandboxUnavailable(self._failure)
        return self

    def close(self):
        """Stop the server (it ends when its stdin closes) and remove the run folders."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
        shutil.rmtree(self.runs, ignore_errors=True)


def _read_json_line(fd, timeout, buffer=None):
    """The next JSON line from ``fd`` (``buffer``: a bytearray of what was read past earlier lines),
    or None when nothing well-formed comes in time."""
    buffer = bytearray() if buffer is None else buffer
    deadline = time.monotonic() + timeout
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buffer += chunk
    end = buffer.index(b"\n")
    line = bytes(buffer[:end])
    del buffer[:end + 1]
    try:
        return json.loads(line)
    except ValueError:
        return None


_address = None  # this process's run's WarmSandbox socket (``use``), None: start one of its own
_client = None
_client_lock = threading.Lock()


def use(address):
    """Make ``address`` (a run's ``WarmSandbox.socket``) the warm sandbox this process forks jobs from."""
    global _address, _client
    with _client_lock:
        _address, _client = (str(address) if address else None), None


def client():
    """This process's ``ForkClient``; safe from any thread. Without a run's sandbox to share (a
    Dask worker, a test) the process starts a ``WarmSandbox`` of its own, closed at exit."""
    global _client
    with _client_lock:
        if _client is None or _client.broken:
            own = None if _address else WarmSandbox().wait_ready()
            _client = ForkClient(Path(_address) if _address else own.socket, own)
        return _client


class ForkClient:
    """One connection to a ``WarmSandbox``: asks it to fork confined jobs."""

    def __init__(self, address, own=None):
        self.sandbox, self.runs = own, address.parent.parent
        self.connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.connection.connect(str(address))
        except OSError as error:
            raise launcher.SandboxUnavailable(f"no warm sandbox at {address}: {error}") from None
        self.lock = threading.Lock()
        self.ids = itertools.count()
        self.uids = launcher.UidAllocator()
        self.broken = False
        self._buffer = bytearray()

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
            try:
                self.connection.sendall((json.dumps(request) + "\n").encode())
                reply = _read_json_line(self.connection.fileno(), REPLY_TIMEOUT, self._buffer)
            except OSError as error:
                reply = repr(error)
            if not isinstance(reply, dict) or reply.get("id") != request["id"]:
                self.broken = True  # the next client() connects afresh
        if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int):
            raise launcher.SandboxUnavailable(f"the warm sandbox did not fork: {reply!r}")
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
