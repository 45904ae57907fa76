"""The PyInstaller bundle: what installer/bundle_filter.py leaves out, and (slow) what the
spec's Analysis would bundle (``EASEL_PYI_ANALYSIS_ONLY=1``: no executables are built)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer"


def _bundle_filter():
    spec = importlib.util.spec_from_file_location("bundle_filter", INSTALLER / "bundle_filter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bf = _bundle_filter()


@pytest.mark.parametrize("dest", [
    "torch/include/ATen/core/Tensor.h",
    "torch/include/c10/util/Half.h",
    "torch/share/cmake/Torch/TorchConfig.cmake",
    "torch/test/c10_DeviceGuard_test",
    "torch/bin/test_api",
    "torch/bin/protoc",
    "torch/lib/libtorchbind_test.so",
    "torch/lib/libjitbackend_test.so",
    "torch/lib/libtorch_cpu.a",
    "torch\\lib\\torch_cpu.lib",      # Windows separators and import libraries
    "torch\\lib\\c10.pdb",
    "torch/_inductor/codegen/cpp_prefix.h",
    "torch/csrc/api/include/torch/nn.h",
    "tests/test_installer.py",
    "bench/startup.py",
    "PySide6/Qt/translations/qtbase_de.qm",
    "PySide6/translations/qtbase_fr.qm",
    "PySide6/Qt/lib/libQt6WebEngineCore.so.6",
    "PySide6/Qt3DCore.pyd",
    "PySide6/Qt/lib/libQt6Quick3D.so.6",
    "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    "libpango-1.0.so.0",
    "PySide6/QtCore.pyi",
    "tcl/init.tcl",
])
def test_filter_drops_what_the_app_never_uses(dest: str) -> None:
    assert not bf.keep(dest)


@pytest.mark.parametrize("dest", [
    "torch/lib/libtorch_cpu.so",
    "torch/lib/libtorch_python.so",
    "torch/lib/libc10.so",
    "torch\\lib\\torch_cpu.dll",
    "torch/lib/libtorch_cpu.dylib",
    "torch/bin/torch_shm_manager",  # kept although torch/bin/ is dropped
    "torch/_C.cpython-311-x86_64-linux-gnu.so",
    "torch/nn/modules/conv.py",     # torch's hook ships sources (TorchScript reads them)
    "core/training/recipes/tiny_vae.toml",
    "weights/vae/vae_faces.safetensors",
    "weights/vae/vae_faces.json",
    "resources/icons/easel-256.png",
    "PySide6/Qt/lib/libQt6Widgets.so.6",
    "PySide6/QtWidgets.abi3.so",
    "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6/plugins/platforms/qwindows.dll",
    "PySide6/Qt/plugins/platforms/libqcocoa.dylib",
    "PySide6/Qt/plugins/imageformats/libqjpeg.so",
    "numpy.libs/libscipy_openblas64_-32a4b2a6.so",
    "libpython3.11.so.1.0",
    "base_library.zip",
    "easel-0.1.0.dist-info/METADATA",
])
def test_filter_keeps_what_the_app_needs(dest: str) -> None:
    assert bf.keep(dest)


def test_filter_modules_and_toc() -> None:
    toc = [("torch/include/x.h", "/s/x.h", "DATA"), ("weights/vae/a.json", "/s/a.json", "DATA"),
           ("./torch/share/cmake/a.cmake", "/s/a.cmake", "DATA")]
    assert bf.filter_toc(toc) == [toc[1]]
    mods = [("core.cli", "", "PYMODULE"), ("tests.test_x", "", "PYMODULE"),
            ("bench.startup", "", "PYMODULE"), ("desktop.app", "", "PYMODULE"),
            ("tkinter.ttk", "", "PYMODULE"), ("pytest", "", "PYMODULE")]
    assert [m[0] for m in bf.filter_modules(mods)] == ["core.cli", "desktop.app"]


def test_only_the_hugging_face_parts_stable_diffusion_loads_are_kept() -> None:
    models = ["bert", "clip", "auto", "t5", "clipseg"]
    assert bf.unused_subpackages("transformers.models", models) == [
        "transformers.models.bert", "transformers.models.clipseg", "transformers.models.t5"]
    excluded = set(bf.excluded_modules())
    assert {"scipy", "hf_xet", "diffusers.modular_pipelines"} <= excluded
    if bf.installed_subpackages("transformers.models"):  # transformers is installed
        assert {"transformers.models.bert", "transformers.models.clipseg"} <= excluded
        assert "transformers.models.clip" not in excluded
    if bf.installed_subpackages("diffusers.pipelines"):
        assert "diffusers.pipelines.stable_diffusion_xl" in excluded
        assert "diffusers.pipelines.stable_diffusion" not in excluded


# pytest in a fresh process where, once pytest has started, every module the bundle leaves
# out is missing as it is in the bundle (``import`` raises ModuleNotFoundError and
# importlib.util.find_spec answers None). What pytest itself loaded stays (pygments).
REFUSING = r"""
import sys
import pytest


class Refuse:
    def pytest_sessionstart(self, session):
        for name in %(names)r:
            sys.modules.setdefault(name, None)


sys.exit(pytest.main(%(args)r, plugins=[Refuse()]))
"""


@pytest.mark.slow
def test_stable_diffusion_runs_without_the_modules_the_bundle_leaves_out(tmp_path: Path) -> None:
    """Stable Diffusion's loaders and jobs (a single-file checkpoint and a diffusers folder, SD
    1.x, 2.x and inpainting, the three samplers, the inpaint engine) need nothing that
    installer/bundle_filter.py excludes: a newer diffusers or transformers that imports more
    fails here, not in a user's installed app."""
    pytest.importorskip("diffusers")
    out = pytest_without_excluded(tmp_path, "tests/core/test_thirdparty_sd.py", "-k",
                                  "single_file_loads_the_same_model or every_sampler or "
                                  "inpaint_job_changes")
    assert re.search(r"\b6 passed\b", out), out[-2000:]  # none deselected


@pytest.mark.slow
def test_layered_files_work_without_the_modules_the_bundle_leaves_out(tmp_path: Path) -> None:
    """psd-tools' optional helpers for vector shapes and effects (scipy, aggdraw) stay out of
    the bundle: .ora and .psd out and in, and the checks of crafted layered files, pass
    without them, and load every module the Analysis summary checks for."""
    check = tmp_path / "test_layered_runtime.py"
    check.write_text(
        "import sys\n"
        "from core.document.ora import read_ora, write_ora\n"
        "from core.document.psd import read_psd, write_psd\n"
        "from test_document_layers import sample_stack\n\n\n"
        "def test_runtime_modules_load():\n"
        "    stack = sample_stack()\n"
        "    read_psd(write_psd(stack), 'x.psd')\n"
        "    read_ora(write_ora(stack), 'x.ora')\n"
        f"    assert not [m for m in {bf.LAYERED_RUNTIME!r} if m not in sys.modules]\n"
        "    assert sys.modules['psd_tools.compression._rle'].__file__.endswith(('.so', '.pyd'))\n",
        encoding="utf-8")
    out = pytest_without_excluded(tmp_path, "--rootdir", str(ROOT), "-m", "not slow",
                                  "tests/core/test_document_layers.py",
                                  "tests/core/test_crafted_layered.py", str(check),
                                  extra_path=ROOT / "tests" / "core")
    assert re.search(r"\b\d+ passed\b", out) and "failed" not in out, out[-2000:]


def pytest_without_excluded(tmp_path: Path, *args: str, extra_path: Path | None = None) -> str:
    """Run pytest on ``args`` in a fresh process where every module the bundle leaves out is
    missing (see REFUSING); its output, after asserting that it passed."""
    tools = ("tests", "bench", "conftest", "pytest", "_pytest", "pytestqt", "hypothesis",
             "PySide6.")  # the test run's own tools (pytest-qt imports QtTest)
    names = [m for m in bf.excluded_modules() if not m.startswith(tools)]
    argv = ["-q", "-x", "-p", "no:randomly", "-p", "no:cacheprovider",
            "--basetemp", str(tmp_path / "t"), *args]
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(extra_path), str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, "-c", REFUSING % {"names": names, "args": argv}],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def test_strip_list_never_names_an_auditwheel_library() -> None:
    # stripping a patchelf-ed library (numpy.libs, pillow.libs) breaks it
    assert all(p.startswith("torch/lib/") for p in bf.STRIP_AFTER_COLLECT)


def test_summary_reports_contents(tmp_path: Path) -> None:
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"x" * 2048)
    s = bf.summary(
        modules=["core", "core.cli", "desktop", "desktop.app", "torch", "torch.nn"],
        scripts=["pyi_rth_multiprocessing", "entry_easel", "entry_easel_gui"],
        datas=[("weights/vae/vae_faces.safetensors", str(f)),
               ("weights/vae/vae_faces.json", str(f)),
               ("core/training/recipes/tiny_vae.toml", str(f))],
        binaries=[("PySide6/QtCore.abi3.so", str(f)), ("torch/include/x.h", str(f))])
    assert s["core"] and s["desktop"] and s["torch"]
    assert (s["weights"], s["model_cards"], s["recipes"]) == (1, 1, 1)
    assert s["pyside6_modules"] == ["PySide6.QtCore"]
    assert s["tests_excluded"] and s["tkinter_excluded"]
    assert not s["torch_headers_excluded"]  # the header in binaries is reported
    assert s["modules"] == 6
    assert s["sd_missing"] == list(bf.SD_RUNTIME)
    sd = bf.summary(modules=[*bf.SD_RUNTIME, "transformers.models.clip.modeling_clip",
                             "diffusers.pipelines.stable_diffusion.pipeline_output"],
                    scripts=[], datas=[], binaries=[])
    assert sd["sd_missing"] == [] and sd["transformers_models"] == ["clip"]
    assert sd["diffusers_pipelines"] == ["stable_diffusion"]
    assert s["layered_missing"] == list(bf.LAYERED_RUNTIME) and not s["psd_rle_extension"]
    layered = bf.summary(modules=bf.LAYERED_RUNTIME, scripts=[], datas=[], binaries=[
        ("psd_tools/compression/_rle.cpython-311-x86_64-linux-gnu.so", str(f))])
    assert layered["layered_missing"] == [] and layered["psd_rle_extension"]


def test_frozen_program_is_the_console_executable(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The windowed GUI executable starts `easel train` with the console `easel` beside it."""
    from core.training import runs

    name = "easel.exe" if sys.platform == "win32" else "easel"
    gui = tmp_path / ("easel-gui.exe" if sys.platform == "win32" else "easel-gui")
    gui.write_bytes(b"")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(gui))
    assert runs.program() == [str(gui)]  # no CLI executable beside it: itself
    (tmp_path / name).write_bytes(b"")
    assert runs.program() == [str((tmp_path / name).resolve())]
    monkeypatch.delattr(sys, "frozen")
    assert runs.program() == [str(gui), "-m", "core"]


def test_spec_and_scripts_exist() -> None:
    spec = (INSTALLER / "easel.spec").read_text(encoding="utf-8")
    assert "EASEL_PYI_ANALYSIS_ONLY" in spec and "bundle_filter" in spec
    for script in ("entry_easel.py", "entry_easel_gui.py"):
        text = (INSTALLER / script).read_text(encoding="utf-8")
        assert "multiprocessing.freeze_support()" in text
        # freeze_support must run before the app parses its arguments
        assert text.index("freeze_support()") < text.index("main()")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pyinstaller_analysis_bundles_the_app_and_nothing_else(tmp_path: Path) -> None:
    """``pyinstaller installer/easel.spec`` with EASEL_PYI_ANALYSIS_ONLY=1: the Analysis only
    (about 2.5 CPU minutes), checked through the summary the spec writes."""
    pytest.importorskip("PyInstaller", reason="PyInstaller is not installed "
                        "(pip install 'pyinstaller>=6', or the dev extras)")
    summary = tmp_path / "summary.json"
    env = dict(os.environ, EASEL_PYI_ANALYSIS_ONLY="1", EASEL_PYI_SUMMARY=str(summary))
    proc = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--workpath", str(tmp_path / "work"), "--distpath", str(tmp_path / "dist"),
         str(INSTALLER / "easel.spec")],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-4000:]
    s = json.loads(summary.read_text(encoding="utf-8"))
    assert s["core"] and s["desktop"] and s["torch"], s
    assert s["core_modules"] >= 50 and s["desktop_modules"] >= 20, s
    assert {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets"} <= set(s["pyside6_modules"])
    assert not {"PySide6.QtWebEngineCore", "PySide6.QtQml", "PySide6.QtQuick",
                "PySide6.Qt3DCore", "PySide6.QtNetwork"} & set(s["pyside6_modules"]), s
    shipped = sorted((ROOT / "weights").glob("*/*.safetensors"))
    assert s["weights"] == len(shipped) > 0, s
    assert s["model_cards"] >= len(shipped), s
    assert s["recipes"] == len(list((ROOT / "core/training/recipes").glob("*.toml"))), s
    assert s["icons"] >= 1, s
    for key in ("tests_excluded", "tkinter_excluded", "torch_headers_excluded",
                "static_libs_excluded", "cmake_excluded", "qt_translations_excluded"):
        assert s[key] is True, (key, s)
    assert {"entry_easel", "entry_easel_gui", "pyi_rth_multiprocessing"} <= set(s["scripts"])
    assert s["estimated_mb"] < 900, s
    # Stable Diffusion: every module its jobs load, and of the Hugging Face libraries only the
    # parts it uses (8,400 modules in all with every diffusers pipeline and transformers model)
    assert s["sd_missing"] == [], s["sd_missing"]
    assert "clip" in s["transformers_models"], s["transformers_models"]
    assert set(s["transformers_models"]) <= set(bf.KEEP_SUBPACKAGES["transformers.models"])
    assert "stable_diffusion" in s["diffusers_pipelines"], s["diffusers_pipelines"]
    assert not {"stable_diffusion_xl", "flux", "controlnet"} & set(s["diffusers_pipelines"])
    # Layered files: psd-tools with its RLE codec, and its requirement attrs.
    assert s["layered_missing"] == [], s["layered_missing"]
    assert s["psd_rle_extension"] is True, s
    assert s["modules"] < 6000, s["modules"]
    assert not (tmp_path / "dist" / "Easel").exists()  # analysis only: nothing collected


def test_startup_probe_reports_the_shown_window_and_exits(tmp_path: Path) -> None:
    """EASEL_STARTUP_PROBE=1 (bench/startup.py times cold starts with it): one line once the
    main window is shown, then the app closes by itself with exit code 0."""
    env = dict(os.environ, EASEL_STARTUP_PROBE="1", QT_QPA_PLATFORM="offscreen",
               EASEL_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "desktop.app"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines().count("easel: window shown") == 1, proc.stdout
