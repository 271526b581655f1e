"""nbgrader's exchange on a shared machine: its own permission model, plus one sticky bit.

nbgrader sets the modes itself: the root 0777 (it chmods a root it owns to that), per course
``outbound`` 0755 (students read releases, write nothing), ``inbound`` 2733 (students create a
submission folder but cannot list the folder: each is named
``<student>+<assignment>+<timestamp>+<12 random characters>``), ``feedback`` 0711 (a feedback
file is found only by the hash of the student's own submission and its secret).

``protect_inbound`` adds the sticky bit to ``inbound`` (3733): with 2733 alone any student who
learns another's folder name could rename it away; with the sticky bit only its owner (and root)
can rename or remove it. nbgrader itself makes each submission folder 0777 "so the instructor can
delete later", so the secrecy of the folder's name is what keeps its files safe: see
tests/test_exchange_permissions.py.
"""
import os
from pathlib import Path


def make_exchange_root(root):
    """The exchange's root, mode 0777 as nbgrader wants it, reachable through its parents."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o777)
    for parent in root.parents:
        if parent == Path("/"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o555)
    return root


def protect_inbound(root, course_id):
    """Sticky bit on <root>/<course>/inbound (after the first release created it)."""
    inbound = Path(root) / course_id / "inbound"
    if inbound.exists():
        os.chmod(inbound, 0o3733)
    return inbound
