"""nbgrader in a student's JupyterLab: the course's settings plus the student's own name.

The Assignment List and Validate read this file (it is on the Jupyter config path of the
student's server, see grader/lab/__init__.py); so does `nbgrader fetch_assignment` or
`nbgrader submit` run with the same JUPYTER_CONFIG_PATH.
"""
import os
import sys

c = get_config()  # noqa: F821
grader_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Course id and exchange root (COURSE_EXCHANGE) come from the one course configuration.
load_subconfig(os.path.join(grader_dir, "nbgrader_config.py"))  # noqa: F821

# nbgrader's exchange names a submission after the OS user (JUPYTERHUB_USER when that is
# `jovyan`). On a shared server each student is their own user; on one machine the student and
# the instructor, or two students, share the OS user: COURSE_STUDENT_ID names the student.
if os.environ.get("COURSE_STUDENT_ID"):
    c.CourseDirectory.student_id = os.environ["COURSE_STUDENT_ID"]

# Submissions land in inbound with the sticky bit (grader/lab/exchange.py): another student who
# learns a folder's name cannot delete or replace the files in it.
repo_root = os.path.dirname(grader_dir)
if repo_root not in sys.path:
    sys.path.insert(0, repo_root)
c.ExchangeFactory.submit = "grader.lab.exchange.StickySubmit"
