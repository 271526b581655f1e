"""Warm kernels: each grading process keeps one sandboxed forkserver and forks kernels from it.

A fresh kernel costs 2.5-3 s of CPU, nearly all of it ``import torch``. The forkserver
(``forkserver.py``) runs in a bubblewrap sandbox of its own (no network, the course invisible)
with torch already imported; each notebook gets a forked child that confines itself (own uid,
cgroups, rlimits, no capabilities, no inherited descriptors) before it becomes the kernel. The
sandbox has no PID namespace, so that the grader can signal and kill kernels by their pids;
the kernels' run folders live in one folder bound into it, each owned by its kernel's uid, 0700.
"""
import atexit
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from . import sandbox

SOURCE = (Path(__file__).parent / "forkserver.py").read_text()


class ForkServer:
    """The grader's side of one forkserver (started on first use, one per grading process)."""

    _instance = None

    @classmethod
    def instance(cls):
        if cls._instance is None or cls._instance.process.poll() is not None:
            cls._instance = cls()
        return cls._instance

    def __init__(self):
        self.runs = Path(tempfile.mkdtemp(prefix="grader-runs-"))
        os.chmod(self.runs, 0o711)
        cgroup_roots = sandbox.Cgroups.roots()
        command = sandbox.bwrap_command([self.runs, *cgroup_roots], pid_namespace=False)
        self.process = subprocess.Popen(command + ["--chdir", str(self.runs), sys.executable, "-I", "-c", SOURCE],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()
        self.ids = itertools.count()
        ready = self.process.stdout.readline()
        if "ready" not in ready:
            raise sandbox.SandboxUnavailable(f"the warm kernel server did not start: {ready!r}")
        atexit.register(self.close)

    def close(self):
        """Stop the server (it ends when its stdin closes) and remove the run folders."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
        shutil.rmtree(self.runs, ignore_errors=True)

    def fork(self, cwd, uid, limits, cgroups, env, **job):
        """Fork a confined child in ``cwd`` as ``uid``; returns its pid.

        job: ``connection_file`` (a kernel) or ``program`` with ``stdin``/``stdout`` file paths.
        """
        with self.lock:
            request = {"id": next(self.ids), "cwd": str(cwd), "uid": uid, "rlimits": limits,
                       "cgroups": cgroups, "env": env, **job}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            reply = json.loads(self.process.stdout.readline())
        return reply["pid"]

    def run_dir(self, uid):
        """A fresh folder for one job, inside the sandbox's view, owned by ``uid``, private."""
        folder = Path(tempfile.mkdtemp(prefix="job-", dir=self.runs))
        os.chown(folder, uid, uid)
        os.chmod(folder, 0o700)
        return folder


JOB_ENV = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp", "IPYTHONDIR": "/tmp/.ipython",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


class ForkedProcess:
    """What jupyter_client's LocalProvisioner needs of a Popen, for a child the forkserver forked."""

    stdin = stdout = stderr = None  # the kernel's descriptors are /dev/null

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
        os.kill(self.pid, signum)

    def kill(self):
        self.send_signal(9)

    def terminate(self):
        self.send_signal(15)


class WarmKernelManager(sandbox.SandboxedKernelManager):
    """A sandboxed kernel manager whose kernels are forked by the warm ForkServer."""

    def _ipc_root(self):
        self._server = ForkServer.instance()
        return self._server.runs

    def format_kernel_cmd(self, extra_arguments=None):  # the forkserver, not a command, runs it
        return AsyncKernelManager.format_kernel_cmd(self, extra_arguments)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        uid = sandbox.sandbox_uid(next(_slots))
        workdir = self._ipc_dir / "work"
        shutil.copytree(self._workdir, workdir)
        for path in [self._ipc_dir, *self._ipc_dir.rglob("*")]:
            os.chown(path, uid, uid)
        os.chmod(self._ipc_dir, 0o700)
        self._cgroups = sandbox.Cgroups(self._ipc_dir.name, self.memory_mb, self.processes)
        pid = self._server.fork(
            workdir, uid, sandbox.rlimits(self.memory_mb, self.cpu_seconds, self.processes, self.file_mb),
            self._cgroups.procs_files(), JOB_ENV, connection_file=str(self.connection_file))
        provisioner = self.provisioner
        provisioner.process, provisioner.pid, provisioner.pgid = ForkedProcess(pid), pid, pid
        self._reconcile_connection_info(provisioner.connection_info)


_slots = itertools.cycle(range(1, 16))  # uids for this process's kernels, one at a time
