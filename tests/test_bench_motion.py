"""bench/motion.py's command line: held-out seeds only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "motion.py"


def test_a_tuning_seed_is_refused_as_a_held_out_set() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--first-seed", "24"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "--first-seed 24 is a tuning seed (1-24)" in proc.stderr
    assert proc.stdout == ""
