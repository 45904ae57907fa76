"""What the PyInstaller bundle leaves out (installer/easel.spec imports this; no PyInstaller here).

The Analysis excludes the modules :func:`excluded_modules` lists: what the app never imports,
though optional imports of torch, Pillow or the Hugging Face libraries name it.

PyInstaller's hooks collect whole packages: torch's hook takes every data file and shared
library of ``torch`` (C++ headers, CMake files, test binaries, static libraries), PySide6's
take Qt translations and plugins. The app needs none of those at run time, so the spec passes
every entry of the Analysis through :func:`keep` and drops the rest. Paths are the entries'
destinations inside the bundle, with ``/`` or ``\\`` separators (Windows).

Pure functions of a path or a module name (and one look at the installed packages' folders),
so tests/test_installer.py checks them without PyInstaller.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

# Modules (and packages, with everything under them) the Analysis excludes.
EXCLUDES: tuple[str, ...] = (
    # never used by the app; some would be pulled in by optional imports of torch or Pillow
    "tkinter", "_tkinter", "PIL.ImageTk", "PIL._tkinter_finder", "turtle", "idlelib",
    "tests", "bench", "conftest", "pytest", "_pytest", "pytestqt", "hypothesis",
    "IPython", "matplotlib", "scipy", "skimage", "cv2", "pandas", "torchvision", "triton",
    "tensorboard", "onnx", "onnxruntime", "ruff", "sphinx", "jupyter_client", "notebook",
    "PyQt5", "PyQt6", "PySide2",
    # only torch.compile, torch.utils.cpp_extension and torch.distributed.checkpoint use these
    # (never the app: a census of sys.modules after `easel --self-test`, a training run and
    # the GUI finds none of them); setuptools also brings a runtime hook that slows startup
    "setuptools", "distutils", "pkg_resources", "networkx", "jinja2", "fsspec",
    # Qt modules the app does not import (QtCore, QtGui, QtWidgets are all it uses)
    "PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets",
    "PySide6.QtQuickControls2", "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets",
    "PySide6.QtWebEngineQuick", "PySide6.Qt3DCore", "PySide6.Qt3DRender",
    "PySide6.QtQuick3D", "PySide6.QtMultimedia", "PySide6.QtSql", "PySide6.QtTest",
    "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools", "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets", "PySide6.QtPdf", "PySide6.QtCharts", "PySide6.QtBluetooth",
)

# Folders (a path prefix, matched case-insensitively) that are never shipped.
DROP_DIRS: tuple[str, ...] = (
    "torch/include/",       # C++ headers for building extensions
    "torch/share/",         # CMake config
    "torch/test/",          # C++ test binaries
    "torch/bin/",           # protoc, C++ test executables (torch_shm_manager: see KEEP_FILES)
    "torch/lib/libshm_windows/",  # headers and import libraries
    "torch/_inductor/codegen/aoti_runtime/",  # C++ sources for ahead-of-time compilation
    "torch/utils/benchmark/",
    "torch/testing/_internal/data/",
    "caffe2/",
    "functorch/include/",
    "tests/",                # Easel's own tests and benchmarks (never imported by the app)
    "bench/",
    "pyside6/qt/translations/",  # Easel installs no QTranslator: Qt's own strings stay English
    "pyside6/translations/",
    "pyside6/qt/qml/",
    "pyside6/qml/",
    "pyside6/qt/metatypes/",
    "pyside6/typesystems/",
    "pyside6/include/",
    "pyside6/glue/",
    "pyside6/scripts/",
    "pyside6/qt/plugins/designer/",
    "pyside6/qt/plugins/qmltooling/",
    "pyside6/qt/plugins/qmllint/",
    "pyside6/qt/plugins/sqldrivers/",
    "pyside6/qt/plugins/tls/",          # no network
    "pyside6/qt/plugins/networkinformation/",
    "pyside6/qt/plugins/wayland-graphics-integration-server/",
    "pyside6/plugins/designer/",
    "pyside6/plugins/qmltooling/",
    "pyside6/plugins/sqldrivers/",
    "pyside6/plugins/tls/",
    "pyside6/plugins/networkinformation/",
    # embedded-device platforms and input (no desktop session runs them)
    "pyside6/qt/plugins/egldeviceintegrations/",
    "pyside6/qt/plugins/generic/",
    "pyside6/plugins/egldeviceintegrations/",
    "pyside6/plugins/generic/",
    "tcl/", "tk/", "tcl8/", "_tcl_data/", "_tk_data/",  # tkinter's data (it is excluded too)
)

# File-name patterns (matched case-insensitively against the last path component).
DROP_FILES: tuple[str, ...] = (
    "*.h", "*.hpp", "*.hxx", "*.cuh", "*.inl",   # C/C++/CUDA headers
    "*.c", "*.cc", "*.cpp", "*.cxx", "*.cu",      # C/C++/CUDA sources
    "*.a", "*.lib", "*.exp", "*.pdb",             # static / import libraries, debug symbols
    "*.cmake", "cmakelists.txt",
    "*.pyi",                                       # type stubs
    "*_test.so", "*_test.dll", "*_test.dylib",     # torch's test extension libraries
    "libjitbackend_test.*", "libtorchbind_test.*", "libbackend_with_compiler.*",
    "libaoti_custom_ops.*", "aoti_custom_ops.*", "jitbackend_test.*", "torchbind_test.*",
    "backend_with_compiler.*",
    "qt6webengine*", "qtwebengine*", "libqt6webengine*",  # browser engine
    "qt63d*", "libqt63d*", "qt3d*",                          # Qt 3D
    "qt6quick3d*", "libqt6quick3d*", "qtquick3d*",            # Qt Quick 3D
    "qt6designer*", "libqt6designer*",
    "qt6pdf*", "libqt6pdf*",
    "qt6virtualkeyboard*", "libqt6virtualkeyboard*",
    # Qt platform plugins for framebuffers, VNC and EGL devices (desktops use xcb, wayland,
    # windows or cocoa; offscreen and minimal stay for headless runs)
    "libqeglfs*", "libqlinuxfb*", "libqvnc*", "libqvkkhrdisplay*", "libqminimalegl*",
    "libqt6eglfsdeviceintegration*", "libqt6eglfskmssupport*",
    # Qt's GTK 3 platform theme: it would load the user's GTK into a process that carries
    # the build machine's GLib stack, a classic cause of crashes on other distributions;
    # without it Qt draws its own dialogs. Its private dependencies go with it.
    "libqgtk3*", "libatk-1.0.so*", "libatk-bridge-2.0.so*", "libpango-1.0.so*",
    "libpangocairo-1.0.so*", "libpangoft2-1.0.so*", "libcairo.so*", "libcairo-gobject.so*",
    "libgdk_pixbuf-2.0.so*", "libthai.so*", "libdatrie.so*", "libfribidi.so*",
    "libpixman-1.so*", "libgraphite2.so*",
)

# Names under a dropped folder that the app does need.
KEEP_FILES: tuple[str, ...] = (
    "torch/bin/torch_shm_manager",  # DataLoader worker shared memory on Linux/macOS
    "torch/bin/torch_shm_manager.exe",
)

# Linux libraries that are stripped of their symbol tables after collecting (installer/
# easel.spec). torch's own builds ship unstripped; these are checked to load and run the
# self-test once stripped. Never a library patched by auditwheel (numpy.libs, pillow.libs...):
# strip breaks those.
STRIP_AFTER_COLLECT: tuple[str, ...] = (
    "torch/lib/libtorch_cpu.so",
    "torch/lib/libtorch_python.so",
    "torch/lib/libc10.so",
    "torch/lib/libshm.so",
)

# ---------------------------------------------------------------- Hugging Face libraries
# diffusers and transformers are whole model zoos, and every model of theirs names its module
# in an ``if TYPE_CHECKING:`` import that PyInstaller follows, so they would bring thousands of
# modules Easel never loads. Stable Diffusion (core/thirdparty/sd, core/pipelines/sd.py) loads
# SD 1.x/2.x through StableDiffusionPipeline, its UNet, VAE, schedulers and the single-file
# conversions, and transformers' CLIP text model and tokenizer. What it loads was found by
# running tests/core/test_thirdparty_sd.py (every loader, sampler and job) in one process and
# listing sys.modules (diffusers 0.42.1, transformers 5.24.0). tests/test_installer.py runs
# those tests with everything left out made missing, so a new version that needs more fails
# there; installer/build_linux.sh runs an SD job in the built bundle.
#
# Of these packages only the named subpackages are shipped; every other one is excluded.
KEEP_SUBPACKAGES: dict[str, tuple[str, ...]] = {
    "transformers.models": (
        "auto", "clip",     # CLIPTextModel, CLIPTokenizer and the lookups they make
        "encoder_decoder",  # imported by models.auto.tokenization_auto
        # imported by diffusers.models.autoencoders.autoencoder_rae, which the autoencoders
        # package imports with AutoencoderKL
        "dinov2_with_registers", "siglip", "vit_mae",
    ),
    "diffusers.pipelines": ("stable_diffusion",),
}
# Modules and packages never loaded by Easel's SD jobs (nor by anything else in the app).
UNUSED_MODULES: tuple[str, ...] = (
    "diffusers.modular_pipelines", "diffusers.commands", "diffusers.experimental",
    "transformers.pipelines", "transformers.trainer", "transformers.cli",
    "huggingface_hub.inference", "huggingface_hub.cli",
    # downloads, uploads and command lines of huggingface_hub, and what only they import
    "hf_xet", "pydantic", "pydantic_core", "rich", "pygments", "markdown_it", "click",
    "imageio",  # diffusers' video export
)
# Modules every SD job loads: the Analysis summary reports any of them missing.
SD_RUNTIME: tuple[str, ...] = (
    "core.thirdparty.sd.load", "core.thirdparty.sd.checkpoint", "core.pipelines.sd",
    "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion",
    "diffusers.loaders.single_file_utils", "diffusers.models.unets.unet_2d_condition",
    "diffusers.models.autoencoders.autoencoder_kl", "diffusers.schedulers.scheduling_ddim",
    "diffusers.schedulers.scheduling_euler_discrete",
    "diffusers.schedulers.scheduling_dpmsolver_multistep",
    "transformers.models.clip.modeling_clip", "transformers.models.clip.tokenization_clip",
    "tokenizers", "safetensors.torch",
)

# Modules that writing and reading layered files (.ora, .psd) load; psd-tools' requirement attrs
# provides both ``attrs`` and ``attr``. Its RLE codec is an extension module (a binary).
LAYERED_RUNTIME: tuple[str, ...] = (
    "core.document.ora", "core.document.psd", "psd_tools", "psd_tools.api.psd_image",
    "psd_tools.api.layers", "psd_tools.api.numpy_io", "psd_tools.compression",
    "psd_tools.psd.parse_limits", "attrs", "attr",
)


def unused_subpackages(parent: str, names: Iterable[str]) -> list[str]:
    """The subpackages of ``parent`` (one of :data:`KEEP_SUBPACKAGES`), given the ``names`` of
    those installed, that the bundle leaves out."""
    return sorted(f"{parent}.{n}" for n in names if n not in KEEP_SUBPACKAGES[parent])


def installed_subpackages(parent: str) -> list[str]:
    """The names of the subpackages of the package ``parent`` (dotted) in this environment,
    found on disk without importing it; none when it is not installed."""
    top, *rest = parent.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations)), *rest)
    return sorted(p.name for p in folder.iterdir() if (p / "__init__.py").is_file())


def excluded_modules() -> list[str]:
    """Every module the Analysis excludes: :data:`EXCLUDES`, :data:`UNUSED_MODULES` and the
    installed subpackages of :data:`KEEP_SUBPACKAGES`' packages that are not kept."""
    unused = [m for parent in KEEP_SUBPACKAGES
              for m in unused_subpackages(parent, installed_subpackages(parent))]
    return [*EXCLUDES, *UNUSED_MODULES, *unused]


_DROP_FILE_RE = re.compile("|".join(fnmatch.translate(p) for p in DROP_FILES), re.IGNORECASE)


def normalise(path: str) -> str:
    """``path`` with ``/`` separators, no leading ``./`` or ``/``, lower case."""
    p = path.replace("\\", "/").lower()
    while p.startswith("./"):
        p = p[2:]
    return p.lstrip("/")


def keep(dest: str) -> bool:
    """Whether the bundle entry at ``dest`` (a path inside the bundle) is shipped."""
    p = normalise(dest)
    if p in KEEP_FILES:
        return True
    if any(p.startswith(d) for d in DROP_DIRS):
        return False
    name = p.rsplit("/", 1)[-1]
    return not _DROP_FILE_RE.fullmatch(name)


def keep_module(name: str) -> bool:
    """Whether the Python module ``name`` (dotted) is shipped: nothing from Easel's tests or
    benchmarks (the app never imports them; they are excluded from the Analysis as well)."""
    top = name.split(".", 1)[0]
    return top not in ("tests", "bench", "conftest", "pytest", "_pytest", "tkinter", "_tkinter")


T = TypeVar("T", bound=tuple)


def filter_toc(entries: Iterable[T]) -> list[T]:
    """The entries of a PyInstaller TOC (``(dest, src, typecode)`` tuples) that are shipped."""
    return [e for e in entries if keep(e[0])]


def filter_modules(entries: Iterable[T]) -> list[T]:
    """The entries of a PyInstaller module TOC (``(module name, src, typecode)``) shipped."""
    return [e for e in entries if keep_module(e[0])]


def _under(paths: Iterable[str], prefix: str) -> list[str]:
    return [p for p in paths if normalise(p).startswith(prefix)]


def summary(modules: Iterable[str], scripts: Iterable[str],
            datas: Iterable[tuple[str, str]], binaries: Iterable[tuple[str, str]]
            ) -> dict[str, object]:
    """What an Analysis would bundle, for ``EASEL_PYI_ANALYSIS_ONLY=1`` (CI checks it).

    ``modules``: dotted names of the Python modules; ``scripts``: entry script names;
    ``datas``/``binaries``: ``(dest in bundle, source file)`` pairs. Sizes are the source
    files' sizes, so ``estimated_mb`` is the folder's size less the executables and the
    compressed module archive."""
    import os

    modules, scripts = sorted(set(modules)), list(scripts)
    datas, binaries = list(datas), list(binaries)
    dests = [normalise(d) for d, _ in [*datas, *binaries]]
    tops = {m.split(".", 1)[0] for m in modules}
    size = 0
    for _, src in [*datas, *binaries]:
        with contextlib.suppress(OSError):
            size += os.path.getsize(src)
    # PySide6's Qt modules are extension modules: binaries named PySide6/QtXxx.<suffix>
    qt_modules = sorted({"PySide6." + name.split(".")[0]
                         for d, _ in binaries
                         for name in [d.replace("\\", "/").rsplit("/", 1)[-1]]
                         if normalise(d).startswith("pyside6/qt") and normalise(d).count("/") == 1})
    return {
        "modules": len(modules),
        "scripts": scripts,
        "datas": len(datas),
        "binaries": len(binaries),
        "estimated_mb": round(size / 2**20, 1),
        "core": "core" in tops and "core.cli" in modules,
        "desktop": "desktop" in tops and "desktop.app" in modules,
        "core_modules": sum(m == "core" or m.startswith("core.") for m in modules),
        "desktop_modules": sum(m == "desktop" or m.startswith("desktop.") for m in modules),
        "torch": "torch" in tops,
        "pyside6_modules": qt_modules,
        "weights": sum(d.startswith("weights/") and d.endswith(".safetensors") for d in dests),
        "model_cards": sum(d.startswith("weights/") and d.endswith(".json") for d in dests),
        "recipes": sum(d.startswith("core/training/recipes/") and d.endswith(".toml")
                       for d in dests),
        "icons": len(_under(dests, "resources/icons/")),
        "tests_excluded": not ({"tests", "bench", "pytest", "_pytest"} & tops)
        and not _under(dests, "tests/") and not _under(dests, "bench/"),
        "tkinter_excluded": not ({"tkinter", "_tkinter"} & tops),
        "torch_headers_excluded": not any(d.endswith((".h", ".hpp", ".cuh")) for d in dests)
        and not _under(dests, "torch/include/"),
        "static_libs_excluded": not any(d.endswith((".a", ".lib")) for d in dests),
        "cmake_excluded": not _under(dests, "torch/share/")
        and not any(d.endswith(".cmake") for d in dests),
        "qt_translations_excluded": not any(d.endswith(".qm") for d in dests),
        "sd_missing": [m for m in SD_RUNTIME if m not in modules],
        "layered_missing": [m for m in LAYERED_RUNTIME if m not in modules],
        "psd_rle_extension": any(d.startswith("psd_tools/compression/_rle.") for d in dests),
        "transformers_models": sorted({m.split(".")[2] for m in modules
                                       if m.startswith("transformers.models.")}),
        "diffusers_pipelines": sorted({m.split(".")[2] for m in modules
                                       if m.startswith("diffusers.pipelines.")}),
    }
