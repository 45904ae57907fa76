"""GUI responsiveness while a job runs: the longest gap of the Qt event loop.

A QTimer in the GUI thread ticks every 5 ms while the real InferenceService runs a PatchMatch
job on its own thread; the longest interval between ticks is how long the GUI froze.
Used by bench/inpaint.py; also runs alone: ``python bench/gui_probe.py``.
"""

from __future__ import annotations

import os
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def longest_gui_gap(image: np.ndarray, mask: np.ndarray, seed: int = 0) -> dict[str, float]:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from core.jobs import ImageRef
    from core.pipelines.inpaint import InpaintSpec
    from desktop.inference import InferenceService

    app = QApplication.instance() or QApplication([])
    service = InferenceService(device="cpu")
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    loop = QEventLoop()
    outcome: dict[str, str] = {}
    service.finished.connect(lambda *_: (outcome.setdefault("end", "finished"), loop.quit()))
    service.failed.connect(lambda _id, msg, _tb: (outcome.setdefault("end", msg), loop.quit()))
    mask = (np.asarray(mask) > 0).astype(np.uint8) * 255
    spec = InpaintSpec(seed=seed, image=ImageRef.of(image), mask=ImageRef.of(mask, embed=True))
    timer.start()
    t0 = time.perf_counter()
    service.submit(spec)
    loop.exec()
    seconds = time.perf_counter() - t0
    timer.stop()
    service.shutdown()
    app.processEvents()
    gaps = np.diff(np.array(ticks)) * 1000 if len(ticks) > 1 else np.array([seconds * 1000])
    if outcome.get("end") != "finished":
        raise RuntimeError(f"the probe job did not finish: {outcome.get('end')}")
    return {"job_s": seconds, "max_gap_ms": float(gaps.max()),
            "p99_gap_ms": float(np.percentile(gaps, 99)), "ticks": len(ticks)}


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    img = (rng.random((512, 512, 3)) * 255).astype(np.uint8)
    m = np.zeros((512, 512), np.uint8)
    m[200:325, 200:325] = 255
    r = longest_gui_gap(img, m)
    print(f"job {r['job_s']:.2f} s, longest GUI gap {r['max_gap_ms']:.1f} ms, "
          f"p99 {r['p99_gap_ms']:.1f} ms over {r['ticks']} ticks")
