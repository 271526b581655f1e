"""nbgrader plug-ins the course's grading configures by name: ``execute.GradingExecute``, the
hardened executor of pass 1 (``grader/steps/autograde.py``)."""
