"""The trusted side of verification's channel: one fresh runner, one request and one reply at a time.

The runner (``grader/inside/verify_runner.py``) shares its process with the student's code, so
what it holds is readable and what it says is untrusted. The grader therefore owns the channel and
keeps nothing secret on the far side of it:

- No job file: the grader listens on ``verify.sock`` in the runner's fresh folder (the sandbox's
  job folder, 0700, of a uid never used before), accepts exactly one connection, from that uid,
  then removes the socket. The runner connects before it runs any student code.
- Lock-step: a request is sent only after the previous reply arrived, so a case's inputs exist
  on the far side only while that case runs, and the expected answers never cross at all.
- Every read and write has the run's deadline; a reply is one JSON line of at most
  ``MAX_REPLY`` bytes (``ok``, ``result`` or ``error``, and for a case the ``capabilities`` the
  runner saw, read by ``verify.py`` through ``grader/specs/replies.py``) echoing its request's
  ``id``, a fresh random token, so no reply can be written ahead of its request. Bytes nobody
  asked for (a second reply, one before its request), another id, malformed JSON, silence or a
  closed channel break the channel with a reason (``ChannelBroken``), which costs that student's
  remaining cases only.
"""
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ..sandbox.cgroups import Cgroups
from ..sandbox.warm import JOB_ENV, ForkedProcess, client
from ..sandbox.launcher import Limits

RUNNER = (Path(__file__).resolve().parent.parent / "inside" / "verify_runner.py").read_text()
SOCKET = "verify.sock"  # in the runner's working folder; the runner's SOCKET
MAX_REPLY = 256 * 1024  # bytes in one reply: the largest case needs a few kB
START_TIMEOUT = 30      # seconds for a fresh runner to connect (no student code runs before)
# The runner's CPU priority (nice): an honest runner needs a fraction of a second of CPU, and one
# whose answer cell loops then burns only what the notebooks being executed leave idle.
NICE = 10
STOPPED = "the verifier stopped (crash, exit or closed channel)"
UNASKED = "a message nobody asked for (a second reply, or one before its request)"


class ChannelBroken(Exception):
    """The runner can no longer be asked anything; the message says why, for the verdicts."""


class Channel:
    """A connected runner, asked one request at a time before ``deadline`` (time.monotonic())."""

    def __init__(self, connection, deadline):
        self.connection, self.deadline = connection, deadline
        self.id, self.buffer = "", b""

    def ask(self, request):
        """The runner's reply to ``request`` (a dict: "ok", "result" or "error"); or ChannelBroken."""
        self._refuse_unasked()
        self.id = secrets.token_hex(8)
        self._send(json.dumps({"id": self.id, **request}).encode() + b"\n")
        reply = self._parse(self._read_line())
        if self.buffer:
            raise ChannelBroken(UNASKED)
        return reply

    def _remaining(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelBroken("no reply within the time limit")
        return remaining

    def _send(self, data):
        try:
            self.connection.settimeout(self._remaining())
            self.connection.sendall(data)
        except TimeoutError:
            raise ChannelBroken("the runner stopped reading (time limit)") from None
        except OSError:
            raise ChannelBroken(STOPPED) from None

    def _receive(self, timeout):
        """Some bytes (b'' at the end), or None when none came within ``timeout`` seconds."""
        try:
            self.connection.settimeout(timeout)
            return self.connection.recv(65536)
        except (TimeoutError, BlockingIOError):
            return None
        except OSError:
            return b""

    def _refuse_unasked(self):
        if self.buffer or self._receive(0.0):
            raise ChannelBroken(UNASKED)

    def _read_line(self):
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_REPLY:
                raise ChannelBroken(f"a reply longer than {MAX_REPLY} bytes")
            chunk = self._receive(self._remaining())
            if chunk is None:
                raise ChannelBroken("no reply within the time limit")
            if not chunk:
                raise ChannelBroken(STOPPED)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        if len(line) > MAX_REPLY:
            raise ChannelBroken(f"a reply longer than {MAX_REPLY} bytes")
        return line

    def _parse(self, line):
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError):
            raise ChannelBroken("a reply that is not JSON") from None
        if not isinstance(reply, dict) or not isinstance(reply.get("id"), str):
            raise ChannelBroken("a reply without its request's id")
        if reply["id"] != self.id:
            raise ChannelBroken("a reply to another request")
        kinds = [key for key in ("ok", "result", "error") if key in reply]
        if len(kinds) != 1 or len(reply) != 2 + ("capabilities" in reply):
            raise ChannelBroken("a reply that is not ok, result or error")
        if "error" in reply and not isinstance(reply["error"], str):
            raise ChannelBroken("an error reply without a message")
        return reply


@contextmanager
def runner(helpers, timeout, sandboxed):
    """A fresh runner connected to a ``Channel`` with ``timeout`` seconds in all; killed afterwards.

    helpers: a folder whose ``*.py`` files (the assignment's helper modules) the runner can import.
    """
    run = _forked if sandboxed else _unconfined
    with run(helpers) as (folder, uid, start):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            connection = _accept(listener, folder, uid, start)
        with connection:
            yield Channel(connection, time.monotonic() + timeout)


def _accept(listener, folder, uid, start):
    """The one connection from the runner's uid; the socket file is gone afterwards.

    start: starts the runner, returns a function that tells whether it is still alive.
    """
    path = folder / SOCKET
    listener.bind(str(path))
    os.chown(path, uid, uid)
    listener.listen(1)
    alive = start()
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            listener.settimeout(0.2)
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                if not alive() or time.monotonic() > deadline:
                    raise RuntimeError("the verification runner did not start") from None
                continue
            credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            if struct.unpack("3i", credentials)[1] == uid:
                return connection
            connection.close()
    finally:
        path.unlink(missing_ok=True)


def _copy_helpers(helpers, folder):
    for module in sorted(Path(helpers).glob("*.py")) if helpers else ():
        if module.is_file():
            shutil.copyfile(module, folder / module.name)


@contextmanager
def _forked(helpers):
    """The runner as a confined child of the warm sandboxed fork server, in the job's folder."""
    server = client()
    uid, folder = server.new_job()
    _copy_helpers(helpers, folder)
    limits = Limits()
    cgroups = Cgroups(folder.name, limits)
    process = None

    def start():
        nonlocal process
        process = ForkedProcess(server.fork(folder, uid, limits, cgroups, JOB_ENV, program=RUNNER, nice=NICE))
        return lambda: process.poll() is None

    try:
        yield folder, uid, start
    finally:
        if process is not None:
            process.kill()
            process.wait(10)
        cgroups.remove()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _unconfined(helpers):
    """The runner as a plain subprocess (grading with --no-sandbox) in a fresh temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="verify-"))
    _copy_helpers(helpers, folder)
    process = None

    def start():
        nonlocal process
        process = subprocess.Popen([sys.executable, "-I", "-c", RUNNER], cwd=folder,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True,
                                   preexec_fn=lambda: os.nice(NICE),
                                   env={"PATH": os.environ.get("PATH", ""), "HOME": str(folder),
                                        "MPLCONFIGDIR": str(folder), "MPLBACKEND": "Agg"})
        return lambda: process.poll() is None

    try:
        yield folder, os.getuid(), start
    finally:
        if process is not None:
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
