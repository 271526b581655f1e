"""The class as OS users: one account per student and one for the instructor.

The roster (``grader/roster.py``) names the students; each student id is an OS user name.
"""
import hashlib
import hmac
import json
import os
import pwd
import secrets
import subprocess
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


def remove_user(name):
    """Delete OS user ``name`` and its home (tests clean up the accounts they made)."""
    subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


# --- the local demo's passwords ------------------------------------------------------------
def _hash(password, salt):
    return hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), 200_000).hex()


def make_passwords(users, hashes_path, clear_path):
    """A random password per user (kept across restarts). ``hashes_path`` (JSON, salted
    PBKDF2) is what the hub checks; ``clear_path`` is the list the instructor hands out.
    Both are readable by root only. Returns {user: password}."""
    clear = json.loads(Path(clear_path).read_text()) if Path(clear_path).exists() else {}
    clear = {u: clear.get(u) or secrets.token_urlsafe(9) for u in users}
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


def check_password(hashes_path, user, password):
    try:
        entry = json.loads(Path(hashes_path).read_text())[user]
    except (OSError, KeyError, ValueError):
        return False
    return hmac.compare_digest(_hash(password, entry["salt"]), entry["hash"])
