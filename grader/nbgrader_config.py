"""The course's nbgrader configuration: layout, gradebook and how test cells are scored.

Loaded by the repo root's nbgrader_config.py, so stock `nbgrader` commands work from the root.
Environment variables let a shared JupyterHub move the gradebook and exchange elsewhere.
"""
import os

c = get_config()  # noqa: F821
course_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

c.CourseDirectory.root = course_root
c.CourseDirectory.course_id = os.environ.get("COURSE_ID", "backprop")
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "grader/submitted"
c.CourseDirectory.autograded_directory = "grader/autograded"
c.CourseDirectory.feedback_directory = "grader/feedback"
c.CourseDirectory.db_url = os.environ.get(
    "COURSE_DB_URL", "sqlite:///" + os.path.join(course_root, "grader", "gradebook.db"))

c.ZipCollectApp.downloaded_directory = "grader/downloaded"  # LMS downloads: <this>/<assignment>/archive

# The exchange (release_assignment, fetch, submit, collect): grader/exchange on one machine;
# on a shared server COURSE_EXCHANGE=/srv/nbgrader/exchange, world-writable (grader/lab/README.md).
c.Exchange.root = os.environ.get("COURSE_EXCHANGE", os.path.join(course_root, "grader", "exchange"))

# Only notebooks and their helper modules go into a release; never caches.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__"]

# Late submissions: nbgrader's own handling. Due dates and extensions come from grader/calendar.csv
# and grader/extensions.csv (grader/schedule.py writes them into the gradebook when grading; a
# "KST" suffix is not understood by nbgrader, which then reads the time as UTC);
# grades.csv says who was late by how many hours (late_hours). The penalty is a course policy:
# none by default; "zero" gives a late submission 0 (see nbgrader's LateSubmissionPlugin).
c.LateSubmissionPlugin.penalty_method = os.environ.get("COURSE_LATE_PENALTY", "none")
# Which submission counts (`python -m grader collect --exchange`, grader/schedule.py): each
# student's last before their own due date (calendar + extension), else their last. False: the last.
c.ExchangeCollect.before_duedate = True

# PyTorch prints harmless warnings (UserWarning, DeprecationWarning, ...) to stderr. Stock
# nbgrader scores any grade cell with stderr output 0; drop warning-only stderr instead.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"^(?:[^\n]*:\d+: \w*Warning: [^\n]*\n(?:  [^\n]*(?:\n|$))?)+$"

# Seconds per cell, for stock commands and the batch grader alike (GradeOptions.cell_timeout).
c.Execute.timeout = 30
