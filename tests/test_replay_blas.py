"""The solutions replay the same on any CPU: under each of MKL's code paths and torch's plainest.

A printed number whose last digit depends on the BLAS code path passes `make test` on the
machine that stored it and fails on the next. ``MKL_CBWR`` makes MKL take a given code path
(``COMPATIBLE``: SSE2-era, what another vendor's CPU gets; ``AVX2``; ``AVX512``, falling back on
a CPU without it) and ``ATEN_CPU_CAPABILITY=default`` turns off torch's own vector kernels, so
such a number fails here, on the machine that wrote it. (Without MKL, on arm64, the variables
change nothing and the replays agree trivially.)
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_PATHS = {
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE"},
    "mkl-avx2": {"MKL_CBWR": "AVX2"},
    "mkl-avx512-aten-default": {"MKL_CBWR": "AVX512", "ATEN_CPU_CAPABILITY": "default"},
}


@pytest.mark.slow
@pytest.mark.parametrize("code_path", CODE_PATHS)
def test_solutions_replay_under(code_path, tmp_path):
    env = {**os.environ, **CODE_PATHS[code_path], "MPLCONFIGDIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
         *sorted(str(nb) for nb in (ROOT / "solutions").glob("*/*.ipynb"))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
