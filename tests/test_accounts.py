"""OS users of the hub's class are removed even while one of their processes runs (as root)."""
import os
import pwd
import subprocess
import tempfile
import time

import pytest

from grader.hub import accounts

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates an OS user (useradd): needs root")
USER = "bpaccountstest"


def test_a_user_with_a_running_process_is_removed_and_a_missing_one_is_fine():
    accounts.remove_user(USER)  # a killed run's leftover
    home_root = tempfile.mkdtemp(prefix="accounts-")
    os.chmod(home_root, 0o755)
    accounts.ensure_user(USER, home_root)
    lingering = subprocess.Popen(["runuser", "-u", USER, "--", "sleep", "300"])
    try:
        uid = pwd.getpwnam(USER).pw_uid
        for _ in range(50):  # runuser has switched to the user
            if accounts.processes_of(uid):
                break
            time.sleep(0.1)
        assert accounts.processes_of(uid)
        accounts.remove_user(USER)
        with pytest.raises(KeyError):
            pwd.getpwnam(USER)
        assert not os.path.exists(os.path.join(home_root, USER))
        accounts.remove_user(USER)  # nothing left to remove: fine
    finally:
        lingering.kill()
        lingering.wait()
        os.rmdir(home_root)
