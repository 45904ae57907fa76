"""The shipped judges in a test's own shipped-weights folder (``EASEL_WEIGHTS``).

Pipeline and panel tests run on tiny random-weight models, but FJD, GenEval, the scenes
checker's verdicts and the DCGAN's directions read pictures with the real judges; copying only
those keeps every other shipped model (and the upscalers) out of the test's sight.
"""

from __future__ import annotations

import shutil
from pathlib import Path

JUDGES = Path(__file__).resolve().parents[1] / "weights" / "judge"


def copy_judges(shipped: Path) -> None:
    """Copy weights/judge/* into ``shipped``/judge (the folder EASEL_WEIGHTS points at)."""
    shutil.copytree(JUDGES, shipped / "judge", dirs_exist_ok=True)
