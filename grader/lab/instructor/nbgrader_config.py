"""The instructor's server (formgrader): its buttons run the course's steps (grader/lab/formgrader.py).

Read by nbgrader from the Jupyter config path this folder is put on, besides the course's own
nbgrader_config.py; the grader is imported from the repository this file is in. Should that
fail, the buttons refuse to run rather than fall back to stock nbgrader (nbgrader only logs a
config file that raised, so this file must not raise).
"""
import sys
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
try:
    from grader.lab import formgrader
except ImportError as error:
    class GraderMissing(NbGraderPreprocessor):
        def preprocess(self, nb, resources, reason=f"{type(error).__name__}: {error}"):
            raise RuntimeError("formgrader's Autograde and Generate Feedback run this course's own "
                               f"steps, and the grader could not be imported ({reason}); "
                               "use `python -m grader grade` instead")

    get_config().Autograde.autograde_preprocessors = [GraderMissing]  # noqa: F821
    get_config().GenerateFeedback.preprocessors = [GraderMissing]  # noqa: F821
else:
    formgrader.configure(get_config())  # noqa: F821
