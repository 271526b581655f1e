"""The kernel manager of every grading kernel: the kernel is forked by the warm sandbox.

The kernel talks to the grader over ZMQ ``ipc`` sockets in its job folder (the sandbox has no
network). It works in a copy of its run folder (the assignment's helper files) inside its job
folder, as a uid of its own, within ``Limits`` and a cgroup of its own, from a clean slate (its
own namespaces and /tmp, history off: ``warm``). It is pid 1 of its PID namespace: an
interrupt (SIGINT, which ipykernel handles) reaches it, and killing it ends all it started.
"""
import asyncio
import os
import shutil
import time
from pathlib import Path
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.client import KernelClient
from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import Integer, Type

from .cgroups import Cgroups
from . import warm
from .warm import JOB_ENV, ForkedProcess
from .launcher import Limits

# The private methods of jupyter_client 8 this module overrides or calls: name -> (the library's
# class, the parameters relied on, the library method that calls it, or None: called from here).
# tests/test_runtime.py checks each against the installed version, so an upgrade that renames,
# reshapes or stops calling one fails there first, not as a hung or unconfined kernel.
PRIVATE_API = {
    "_async_pre_start_kernel": (KernelManager, ("self", "transport_encryption", "kw"), "_async_start_kernel"),
    "_async_launch_kernel": (KernelManager, ("self", "kernel_cmd", "kw"), "_async_start_kernel"),
    "_reconcile_connection_info": (KernelManager, ("self", "info"), None),
    "_async_wait": (KernelManager, ("self", "pollinterval"), "_async_finish_shutdown"),
    "_async_cleanup_resources": (KernelManager, ("self", "restart"), "_async_shutdown_kernel"),
    "_async_wait_for_ready": (KernelClient, ("self", "timeout"), None),
    "_handle_kernel_info_reply": (KernelClient, ("self", "msg"), None),
    "_async_is_alive": (KernelClient, ("self",), None),
}
READY_POLL = 0.02  # seconds between looks at a starting kernel (its reply, its life)
SOCKETS_TIMEOUT = 10  # seconds for a forked kernel to open its sockets before clients connect anyway


class SandboxedKernelClient(AsyncKernelClient):
    """The client of a sandboxed kernel: no heartbeat thread.

    Its manager knows from the pid whether the kernel lives. A heartbeat to a kernel that died
    re-sends a ping on a REQ socket with no peer, which waits forever, and stopping the channels
    then waits forever for that thread: one dead kernel would hang its grading worker.
    """

    def start_channels(self, shell=True, iopub=True, stdin=True, hb=True, control=True):
        super().start_channels(shell=shell, iopub=iopub, stdin=stdin, hb=False, control=control)

    async def _async_wait_for_ready(self, timeout=None):
        """As jupyter_client's: ready once a kernel_info reply and an IOPub message came back.

        One request at a time, as there, so that no reply is left over for the next reader; but
        the kernel's life is checked every READY_POLL seconds, not every second, and there is no
        final 0.2 s of listening for IOPub silence (nbclient reads only the messages whose
        parent is a request it sent). A warm forked kernel answers within tens of milliseconds.
        """
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            request = self.kernel_info()
            if await self._reply_to(request, min(time.monotonic() + 1.0, deadline)):
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)  # IOPub is connected
                    return
                except Empty:
                    pass
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

    async def _reply_to(self, request, until):
        """The shell reply to ``request`` if it comes before ``until`` (while the kernel lives)."""
        while time.monotonic() < until:
            try:
                reply = await self.shell_channel.get_msg(timeout=READY_POLL)
            except Empty:
                if not await self._async_is_alive():
                    return None
                continue
            if reply["parent_header"].get("msg_id") == request:
                self._handle_kernel_info_reply(reply)
                return reply
        return None

    wait_for_ready = _async_wait_for_ready  # AsyncKernelClient binds the name to the base's


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels are forked, confined, by this process's warm sandbox (``warm.client()``)."""

    client_factory = Type(SandboxedKernelClient, klass=AsyncKernelClient)

    memory_mb = Integer(Limits.memory_mb, help="Address-space limit of the kernel (MB)").tag(config=True)
    cpu_seconds = Integer(Limits.cpu_seconds, help="CPU-time limit of the kernel (s)").tag(config=True)
    processes = Integer(Limits.processes, help="Process (and thread) limit for the kernel's uid").tag(config=True)
    file_mb = Integer(Limits.file_mb, help="Largest file the kernel may write (MB)").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self._server = warm.client()
        self._uid, self._job = self._server.new_job()
        self.ip = str(self._job / "kernel")
        self.connection_file = str(self._job / "connection.json")

    @property
    def limits(self):
        return Limits(self.memory_mb, self.cpu_seconds, self.processes, self.file_mb)

    async def _async_pre_start_kernel(self, **kw):
        self._workdir = Path(kw.get("cwd") or os.getcwd()).resolve()
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments=None):  # the warm sandbox, not a command, runs it
        return AsyncKernelManager.format_kernel_cmd(self, extra_arguments)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        workdir = self._job / "work"
        shutil.copytree(self._workdir, workdir)
        for path in [self._job, *self._job.rglob("*")]:
            os.chown(path, self._uid, self._uid)
        self._cgroups = Cgroups(self._job.name, self.limits)
        pid = self._server.fork(workdir, self._uid, self.limits, self._cgroups, JOB_ENV,
                                connection_file=str(self.connection_file))
        provisioner = self.provisioner
        provisioner.process, provisioner.pid, provisioner.pgid = ForkedProcess(pid), pid, pid
        self._reconcile_connection_info(provisioner.connection_info)
        await self._sockets_bound(provisioner.process)

    async def _sockets_bound(self, process):
        """Return once the kernel has bound the sockets its clients use (or died, or is late).

        A ZMQ client that connects to an ``ipc`` path nobody listens on yet retries only after
        its 100 ms reconnect interval: waiting here for the socket files makes a start ~0.1 s shorter.
        """
        paths = [Path(f"{self.ip}-{port}") for port in
                 (self.shell_port, self.iopub_port, self.stdin_port, self.control_port)]
        deadline = time.monotonic() + SOCKETS_TIMEOUT
        while not all(path.exists() for path in paths) and process.poll() is None \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    async def _async_wait(self, pollinterval=0.01):
        """Wait for a killed kernel to end, looking every 10 ms (a read in /proc), not every 0.1 s."""
        await super()._async_wait(pollinterval=pollinterval)

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if hasattr(self, "_cgroups"):
            self._cgroups.remove()
        if not restart:
            shutil.rmtree(self._job, ignore_errors=True)
