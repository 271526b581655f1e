"""formgrader's config (grader/lab/instructor/nbgrader_config.py) fails closed: where the grader
cannot be imported, its buttons refuse with a message instead of falling back to stock nbgrader."""
import subprocess
import sys

from grader.course import REPO_ROOT

LOAD = """
import runpy, sys
from traitlets.config import Config
config = Config()
runpy.run_path(sys.argv[1], init_globals={"get_config": lambda: config})
for section, key in (("Autograde", "autograde_preprocessors"), ("GenerateFeedback", "preprocessors")):
    steps = config[section][key]
    assert len(steps) == 1, steps
    try:
        steps[0]().preprocess(None, {})
    except RuntimeError as refusal:
        assert "python -m grader grade" in str(refusal), refusal
    else:
        raise AssertionError(section + " ran")
print("refused")
"""


def test_without_the_grader_the_buttons_refuse(tmp_path):
    config = tmp_path / "a" / "lab" / "instructor" / "nbgrader_config.py"  # no grader beside it
    config.parent.mkdir(parents=True)
    config.write_text((REPO_ROOT / "grader" / "lab" / "instructor" / "nbgrader_config.py").read_text())
    run = subprocess.run([sys.executable, "-I", "-c", LOAD, str(config)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "refused", run.stderr[-2000:]
