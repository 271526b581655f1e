"""A cgroup (v1 cpu, memory, pids) of its own for each sandboxed process, where the machine allows.

Rlimits are per process; cgroups bound a sandbox as a whole: a fork bomb gets one fair CPU
share and one memory budget, so a student next to it keeps running at full speed. Only the v1
layout is supported; where its folders are not writable (no root, a v2-only machine)
``Cgroups.supported()`` is False, the rlimits are the only limits, and ``launcher.check()``
says so in the log.
"""
import os
import time
from pathlib import Path


class Cgroups:
    """The cgroups of one sandboxed process (none where ``supported()`` is False)."""

    ROOT = Path("/sys/fs/cgroup")
    LIMITS = {"cpu": {}, "memory": {"memory.limit_in_bytes": "{memory}", "memory.swappiness": "0"},
              "pids": {"pids.max": "{processes}"}}

    @classmethod
    def supported(cls):
        return os.geteuid() == 0 and all(os.access(cls.ROOT / c, os.W_OK) for c in cls.LIMITS)

    @classmethod
    def roots(cls):
        """The controllers' grader folders (made if missing), or [] where cgroups are not ours."""
        if not cls.supported():
            return []
        roots = [cls.ROOT / c / "grader" for c in cls.LIMITS]
        for root in roots:
            root.mkdir(exist_ok=True)
        return roots

    def __init__(self, name, limits):
        self.folders = [self.ROOT / controller / "grader" / name for controller in self.LIMITS]
        self.available = self.supported()
        if not self.available:
            return
        try:
            for folder, settings in zip(self.folders, self.LIMITS.values()):
                folder.mkdir(parents=True, exist_ok=True)
                for key, value in settings.items():
                    (folder / key).write_text(value.format(memory=limits.memory_mb * 2**20,
                                                           processes=limits.processes))
        except OSError:
            self.available = False
            self.remove()

    def procs_files(self):
        """The files a process writes its pid to, to join these cgroups ([] if unavailable)."""
        return [str(folder / "cgroup.procs") for folder in self.folders] if self.available else []

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
            for _ in range(200):  # the kernel frees a cgroup a moment after its last process exits
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)
