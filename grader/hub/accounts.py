"""The class as OS users: one account per student and one for the instructor.

The roster (``grader/roster.py``) names the students; each student id is an OS user name.
"""
import hashlib
import hmac
import json
import os
import pwd
import secrets
import signal
import subprocess
import time
from pathlib import Path


def ensure_user(name, home_root="/home"):
    """Create OS user ``name`` (home ``home_root/name``, mode 0700) unless it exists; its home."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--home-dir", f"{home_root}/{name}",
                        "--shell", "/bin/bash", "--user-group", name], check=True)
        entry = pwd.getpwnam(name)
    os.chmod(entry.pw_dir, 0o700)  # nobody else reads a student's work
    return Path(entry.pw_dir)


def processes_of(uid):
    """Pids of the processes whose real uid is ``uid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:  # it ended meanwhile
                continue
    return pids


def stop_processes(uid, rounds=50):
    """SIGKILL every process of ``uid``, each by its pid, until none is left (bounded); the pids
    still alive after ``rounds`` tries of 0.1 s."""
    for _ in range(rounds):
        pids = processes_of(uid)
        if not pids:
            return []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    return processes_of(uid)


class RemovalError(RuntimeError):
    pass


def remove_user(name):
    """Stop every process of OS user ``name``, then delete the user and its home. A user that
    does not exist is fine; one that is still there afterwards raises RemovalError, with why.
    (``userdel`` refuses, and says so only in its exit code, while a process of the user runs.)"""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    left = stop_processes(uid)
    result = subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    raise RemovalError(f"OS user {name} could not be removed (userdel exit {result.returncode}: "
                       f"{result.stderr.strip()}; processes left: {left})")


# --- the local demo's passwords ------------------------------------------------------------
def _hash(password, salt):
    return hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), 200_000).hex()


def make_passwords(users, hashes_path, clear_path, renew=()):
    """A random password per user (kept across restarts, new for the users in ``renew``).
    ``hashes_path`` (JSON, salted PBKDF2) is what the hub checks; ``clear_path`` is the list the
    instructor hands out. Both are readable by root only. Returns {user: password}."""
    clear = json.loads(Path(clear_path).read_text()) if Path(clear_path).exists() else {}
    clear = {u: (None if u in renew else clear.get(u)) or secrets.token_urlsafe(9) for u in users}
    hashes = {}
    for user, password in clear.items():
        salt = secrets.token_hex(16)
        hashes[user] = {"salt": salt, "hash": _hash(password, salt)}
    for path, content in ((clear_path, clear), (hashes_path, hashes)):
        path = Path(path)
        path.touch(mode=0o600)
        os.chmod(path, 0o600)
        path.write_text(json.dumps(content, indent=1))
    return clear


def password_users(clear_path):
    """The users that have a password now, in order."""
    return list(json.loads(Path(clear_path).read_text())) if Path(clear_path).exists() else []


def check_password(hashes_path, user, password):
    try:
        entry = json.loads(Path(hashes_path).read_text())[user]
    except (OSError, KeyError, ValueError):
        return False
    return hmac.compare_digest(_hash(password, entry["salt"]), entry["hash"])
