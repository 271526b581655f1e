"""What formgrader's buttons run on this course: the course's own steps, never stock nbgrader's.

Formgrader (the instructor's server: `make lab-instructor`, and the hub's formgrader service)
shows "Autograde" and "Generate Feedback" per submission, and "Generate Feedback" per
assignment; each runs nbgrader's converter in the server's own process. Stock, "Autograde" runs
the student's code there, outside any sandbox, with outputs formgrader renders as they are, and
"Generate Feedback" writes the hidden tests' source into the page that "Release Feedback" then
hands to the student (nbgrader #917). The instructor role's ``nbgrader_config.py`` calls
``configure``, so that:

- "Autograde" executes the notebook as the grader's first pass does: ``GradingExecute`` in the
  sandbox (it needs what grading needs, bubblewrap and root, and fails with that message
  otherwise), outputs made inert. Its scores are the notebook's own tests; only
  `python -m grader grade` adds verification, the scan and the review queue.
- "Generate Feedback" renders as the grader's feedback step does: hidden tests redacted, outputs
  inert, no script from elsewhere. The verifier's line under each test is only in the pages a
  grading run writes.
"""
from ..steps import autograde, feedback
from ..nbgrader_plugins.execute import GradingExecute


def configure(c):
    """Point ``c`` (an nbgrader config being loaded) at the course's steps."""
    for section, settings in autograde.autograde_settings(GradingExecute, {"sandbox": True}).items():
        c[section].update(settings)
    c.GenerateFeedback.preprocessors = feedback.PREPROCESSORS
    c.GenerateFeedback.exporter_class = "grader.steps.feedback.FeedbackExporter"
    c.HTMLExporter.extra_template_basedirs = feedback.PAGE["extra_template_basedirs"]
    c.CoalesceStreamsPreprocessor.enabled = True
