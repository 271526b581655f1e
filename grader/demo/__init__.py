"""The simulated class (``simulate``), the end-to-end demo (``demo``) and the benchmark (``bench``)."""
