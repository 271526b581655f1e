"""The instructor's toolkit: ``python -m grader collect|grade|demo``.

Read in this order: ``course`` (layout and options), ``outcome`` (one record per student),
``batch`` (the loop), ``steps/`` (each step), ``sandbox/`` and ``inside/`` (where student code
runs), ``specs/`` (what verification checks), ``demo/`` (the simulated class and the benchmark),
``lab/`` (JupyterLab for students and the instructor).
"""
