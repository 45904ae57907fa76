"""GUI responsiveness while a job runs: the longest gap of the Qt event loop.

A QTimer in the GUI thread ticks every 5 ms while the real InferenceService runs a PatchMatch
job on its own thread; the longest interval between ticks is how long the GUI froze.
Used by bench/inpaint.py; also runs alone: ``python bench/gui_probe.py``.

``python bench/gui_probe.py --drops``: the longest gap while the window opens crafted Easel
PNGs (metadata naming dozens of images, embedded bombs, absurd numbers) and a valid run whose
three big style images are read back.
"""

from __future__ import annotations

import os
import time

import numpy as np
from report import load_average

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
    mask = (np.asarray(mask) > 0).astype(np.uint8) * 255
    spec = InpaintSpec(seed=seed, image=ImageRef.of(image), mask=ImageRef.of(mask, embed=True))
    timer.start()
    t0 = time.perf_counter()
    job = service.submit(spec)
    job.finished.connect(lambda *_: (outcome.setdefault("end", "finished"), loop.quit()))
    job.failed.connect(lambda msg, _tb: (outcome.setdefault("end", msg), loop.quit()))
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


def longest_drop_gap(png: str, folder: str, settle_s: float = 2.0) -> dict[str, float]:
    """The longest gap of a 5 ms timer while a window opens the Easel PNG ``png`` (a drop) and
    restores its settings, reading what they name, for ``settle_s`` seconds after."""
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.autosave import Autosave
    from desktop.inference import InferenceService
    from desktop.window import MainWindow

    app = QApplication.instance() or QApplication([])
    win = MainWindow(service=InferenceService(device="cpu"),
                     settings=QSettings(os.path.join(folder, "probe.ini"),
                                        QSettings.Format.IniFormat),
                     autosave=Autosave(folder=os.path.join(folder, "autosave")))
    messages: list[str] = []
    win.inform = lambda title, text: messages.append(text)
    win.ask = lambda title, text, buttons: "Discard"
    win.show()
    app.processEvents()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    loop = QEventLoop()
    timer.start()
    QTimer.singleShot(50, lambda: win.open_paths([png]))
    QTimer.singleShot(int(settle_s * 1000), loop.quit)
    loop.exec()
    timer.stop()
    busy = any(getattr(p, "reader", None) is not None and p.reader.busy() for p in win.panels)
    win.close()  # answered "Discard"; shuts the inference service down
    app.processEvents()
    gaps = np.diff(np.array(ticks)) * 1000
    return {"max_gap_ms": float(gaps.max()), "ticks": len(ticks), "still_reading": busy,
            "message": messages[-1][:60] if messages else ""}


def crafted_drops(folder: str) -> dict[str, str]:
    """Easel PNGs whose metadata asks for too much, and one valid run naming big style images."""
    import json

    from PIL import Image, PngImagePlugin

    from core import imageio
    from core.jobs import ImageRef
    from core.pipelines.style import StyleSpec
    from tests.crafted import claimed_png

    rng = np.random.default_rng(0)
    big = []
    for k in range(3):
        path = os.path.join(folder, f"painting{k}.png")
        pixels = (rng.random((2000, 3000, 3)) * 255).astype(np.uint8)
        imageio.save_png(path, pixels)
        big.append(ImageRef.of(pixels, path))
    valid = StyleSpec(styles=tuple(big)).to_dict()
    cases = {
        "40 style paths (6 MP each)": {**valid, "styles": valid["styles"] * 14},
        "8 embedded 6000x6000": {**valid, "styles": [{"sha256": "", "png": claimed_png(
            6000, 6000)}] * 8},
        "400-digit strength": {**valid, "strength": 10**400},
        "valid: 3 style images of 6 MP": valid,
    }
    out = {}
    for name, spec in cases.items():
        path = os.path.join(folder, f"drop{len(out)}.png")
        info = PngImagePlugin.PngInfo()
        info.add_itxt("easel", json.dumps({"spec": spec}), zip=True)
        Image.new("RGB", (64, 64)).save(path, pnginfo=info)
        out[name] = path
    return out


def drop_table(only: int | None = None, settle_s: float = 2.0) -> None:
    """The crafted drops' table (``only``: the first few of them)."""
    import sys
    import tempfile

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as folder:
        os.environ["EASEL_HOME"] = os.path.join(folder, "home")
        drops = crafted_drops(folder)
        print(f"load average {load_average():.2f}")
        print("| dropped PNG | longest GUI gap (ms) | ticks | outcome |")
        print("|---|---|---|---|")
        for name, path in list(drops.items())[:only]:
            r = longest_drop_gap(path, folder, settle_s)
            outcome = r["message"] or ("still reading" if r["still_reading"] else "restored")
            print(f"| {name} | {r['max_gap_ms']:.1f} | {r['ticks']} | {outcome} |")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drops", action="store_true",
                    help="the longest gap while the window opens crafted Easel PNGs")
    ap.add_argument("--smoke", action="store_true",
                    help="a 128 px job, then one crafted drop: checks that the probe runs")
    args = ap.parse_args(argv)
    if args.drops:
        drop_table()
        return 0
    n = 128 if args.smoke else 512
    rng = np.random.default_rng(0)
    img = (rng.random((n, n, 3)) * 255).astype(np.uint8)
    m = np.zeros((n, n), np.uint8)
    m[n * 2 // 5:n * 13 // 20, n * 2 // 5:n * 13 // 20] = 255
    import desktop.inference  # noqa: F401  (imports are not the job's CPU time)

    c0 = time.process_time()
    r = longest_gui_gap(img, m)
    print(f"load average {load_average():.2f}")
    print("| job | job s | CPU s | longest GUI gap (ms) | p99 gap (ms) | ticks |")
    print("|---|---|---|---|---|---|")
    print(f"| PatchMatch {n}x{n} | {r['job_s']:.2f} | {time.process_time() - c0:.2f} | "
          f"{r['max_gap_ms']:.1f} | {r['p99_gap_ms']:.1f} | {r['ticks']} |")
    if args.smoke:
        drop_table(only=1, settle_s=0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
