#!/usr/bin/env bash
# Build Easel's Linux bundle and tarball from a clean clone, in one command:
#
#   bash installer/build_linux.sh
#
# It makes its own virtual environment (build/pyi-venv), installs torch (the CPU build by
# default), Easel and PyInstaller into it, runs PyInstaller on installer/easel.spec
# (-> dist/Easel/, two executables: easel and easel-gui), checks the bundle (its
# `easel --self-test`, a three-step training run with a render worker process and a Stable
# Diffusion job on a tiny random model), and packs
# dist/Easel-<version>-linux-x86_64.tar.gz: the Easel/ folder, install.sh (per user, into
# ~/.local), uninstall.sh, the menu entry and the icon. It prints the sizes and times.
#
# Settings (environment variables):
#   EASEL_TORCH=cpu|cuda   torch build to bundle (default cpu). cuda installs the CUDA build
#                          from the PyTorch index: a multi-gigabyte bundle that needs an NVIDIA
#                          driver on the user's machine (the CPU build runs everywhere).
#   EASEL_TORCH_VERSION    torch version (default 2.13.0, the one Easel is tested with).
#   EASEL_TORCH_INDEX      the pip index torch comes from. Defaults: cpu
#                          https://download.pytorch.org/whl/cpu (used when reachable; otherwise
#                          pip's own configuration, and the build stops if that gives a CUDA
#                          build); cuda https://download.pytorch.org/whl/cu128 (pick the CUDA
#                          variant for your version from pytorch.org's install table).
#   PYTHON                 the interpreter for the venv (default python3.11, else python3).
#   EASEL_BUILD_VENV       the venv folder (default build/pyi-venv; reused when its torch
#                          build matches, EASEL_CLEAN=1 makes it anew).
#   EASEL_PYI_STRIP=0      keep torch's libraries unstripped (default: strip ~90 MB of symbols).
#   EASEL_SKIP_TARBALL=1   stop after checking the bundle.
# AppImage: not built. appimagetool is not packaged on PyPI or Debian/Ubuntu, so the tarball
# is the Linux artefact (see installer/README.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
T0=$(date +%s)

TORCH_KIND="${EASEL_TORCH:-cpu}"
TORCH_VERSION="${EASEL_TORCH_VERSION:-2.13.0}"
VENV="${EASEL_BUILD_VENV:-build/pyi-venv}"
case "$TORCH_KIND" in
    cpu)  TORCH_INDEX="${EASEL_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" ;;
    cuda) TORCH_INDEX="${EASEL_TORCH_INDEX:-https://download.pytorch.org/whl/cu128}" ;;
    *) echo "build_linux.sh: EASEL_TORCH must be cpu or cuda, not '$TORCH_KIND'" >&2; exit 2 ;;
esac
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON=$(command -v python3.11 || command -v python3 || true)
fi
[[ -n "$PYTHON" ]] || { echo "build_linux.sh: no python3.11 found (set PYTHON=...)" >&2; exit 2; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "build_linux.sh: $PYTHON is older than Python 3.11" >&2; exit 2; }

step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - T0 ))"; }

# ------------------------------------------------------------------ the build environment
step "build environment $VENV (torch $TORCH_VERSION, $TORCH_KIND)"
MARKER="$VENV/.easel-torch"
if [[ "${EASEL_CLEAN:-0}" == 1 || ! -x "$VENV/bin/python" || \
      "$(cat "$MARKER" 2>/dev/null)" != "$TORCH_KIND-$TORCH_VERSION" ]]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
"${PIP[@]}" install --upgrade --quiet pip

if ! "$PY" -c "import torch" 2>/dev/null; then
    if "$PY" - "$TORCH_INDEX" <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=15)
except Exception:
    sys.exit(1)
EOF
    then
        echo "torch from $TORCH_INDEX"
        "${PIP[@]}" install "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX" \
            --extra-index-url https://pypi.org/simple
    elif [[ "$TORCH_KIND" == cpu ]]; then
        echo "note: $TORCH_INDEX is not reachable; torch comes from pip's configured indexes"
        "${PIP[@]}" install "torch==$TORCH_VERSION"
    else
        echo "build_linux.sh: $TORCH_INDEX is not reachable, and the CUDA build of torch" \
             "comes only from there (set EASEL_TORCH_INDEX)" >&2
        exit 1
    fi
fi
# The bundle must hold the build asked for: a CUDA torch in a "CPU" bundle is 3 GB larger.
"$PY" - "$TORCH_KIND" <<'EOF'
import sys
import torch
kind, cuda = sys.argv[1], torch.version.cuda
print(f"torch {torch.__version__} (CUDA {cuda or 'none'})")
if kind == "cpu" and cuda:
    sys.exit("build_linux.sh: pip installed a CUDA build of torch; point EASEL_TORCH_INDEX at "
             "a CPU wheel index (https://download.pytorch.org/whl/cpu) or set EASEL_TORCH=cuda")
if kind == "cuda" and not cuda:
    sys.exit("build_linux.sh: EASEL_TORCH=cuda but this torch is a CPU build")
EOF
echo "$TORCH_KIND-$TORCH_VERSION" > "$MARKER"

step "Easel and PyInstaller"
# Easel itself (non-editable: its dependencies at the versions pyproject.toml allows, and
# the package metadata the bundle reports its version from), then the pinned packaging tools.
"${PIP[@]}" install --quiet --upgrade "$ROOT"
"${PIP[@]}" install --quiet -r installer/requirements-build.txt
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
ARCH=$(uname -m)
[[ -f resources/icons/easel-256.png ]] || "$PY" installer/make_icon.py

# ------------------------------------------------------------------ PyInstaller
step "PyInstaller (installer/easel.spec)"
T_PYI=$(date +%s)
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --workpath build/pyi-work --distpath dist installer/easel.spec
T_PYI=$(( $(date +%s) - T_PYI ))
BUNDLE="dist/Easel"

# ------------------------------------------------------------------ check the bundle
step "bundle check: easel --self-test"
CHECK_HOME=$(mktemp -d)
trap 'rm -rf "$CHECK_HOME"' EXIT
T_ST=$(date +%s.%N)
EASEL_HOME="$CHECK_HOME" "$BUNDLE/easel" --self-test
T_ST=$(echo "$(date +%s.%N) $T_ST" | awk '{printf "%.1f", $1 - $2}')

step "bundle check: easel train tiny_vae --steps 3 with a render worker process"
# One torch thread leaves a core for the worker (core.training.trainer.render_workers).
OMP_NUM_THREADS=1 EASEL_HOME="$CHECK_HOME" "$BUNDLE/easel" train tiny_vae --steps 3 \
    --set data.workers=1 --out "$CHECK_HOME/train" --progress jsonl > "$CHECK_HOME/train.jsonl"
grep -q '"event": "done"' "$CHECK_HOME/train.jsonl" || {
    echo "build_linux.sh: the bundled training run did not finish" >&2; exit 1; }
[[ -f "$CHECK_HOME/train/tiny_vae.safetensors" ]]
echo "trained tiny_vae in the bundle: ok"

step "bundle check: a Stable Diffusion job (a tiny random SD 1.x diffusers folder)"
# diffusers and transformers in the bundle: what installer/bundle_filter.py keeps of them,
# their package metadata (they check it at import), the shipped configs and CLIP vocabulary.
PYTHONPATH="$ROOT" "$PY" -c 'import sys; from pathlib import Path
from tests.sd_models import importable_folder; importable_folder(Path(sys.argv[1]))' \
    "$CHECK_HOME/tiny_sd"
EASEL_HOME="$CHECK_HOME" "$BUNDLE/easel" models import "$CHECK_HOME/tiny_sd" --name tiny_sd
EASEL_HOME="$CHECK_HOME" "$BUNDLE/easel" scene "a red ball" --model tiny_sd --steps 2 \
    --size 64x64 --device cpu -o "$CHECK_HOME/sd.png"
[[ -f "$CHECK_HOME/sd.png" ]]
echo "Stable Diffusion job in the bundle: ok"

BUNDLE_MB=$(du -sm "$BUNDLE" | cut -f1)

# ------------------------------------------------------------------ tarball
TARBALL=""
if [[ "${EASEL_SKIP_TARBALL:-0}" != 1 ]]; then
    step "tarball"
    NAME="Easel-$VERSION-linux-$ARCH"
    STAGE="build/pkg/$NAME"
    rm -rf "build/pkg"
    mkdir -p "$STAGE"
    cp -a "$BUNDLE" "$STAGE/Easel"
    cp installer/linux/install.sh installer/linux/uninstall.sh installer/linux/easel.desktop.in \
        "$STAGE/"
    cp resources/icons/easel-256.png resources/icons/easel-512.png "$STAGE/"
    cat > "$STAGE/README.txt" <<EOF
Easel $VERSION for Linux ($ARCH), torch $TORCH_VERSION ($TORCH_KIND)

Install for your user (no root):  ./install.sh
Or run it in place:                ./Easel/easel-gui      (command line: ./Easel/easel --help)
Check the installation:            easel --self-test
Uninstall:                         ~/.local/opt/easel/uninstall.sh

Everything Easel needs is inside Easel/ (Python, Qt, torch, the models); it runs in an X11
or Wayland desktop session. Your pictures, trained models, settings and logs live in your
own folders ("easel info" lists them) and survive upgrades and uninstalling.
EOF
    TARBALL="dist/$NAME.tar.gz"
    tar -C build/pkg -cf - "$NAME" | gzip -6 > "$TARBALL"
    rm -rf "build/pkg"
fi

# ------------------------------------------------------------------ summary
T_ALL=$(( $(date +%s) - T0 ))
echo
echo "Easel $VERSION bundle for Linux $ARCH, torch $TORCH_VERSION ($TORCH_KIND)"
echo "  bundle       $BUNDLE/ ($BUNDLE_MB MB): easel, easel-gui"
[[ -n "$TARBALL" ]] && echo "  tarball      $TARBALL ($(du -m "$TARBALL" | cut -f1) MB)"
echo "  self-test    passed in ${T_ST} s"
echo "  build time   ${T_ALL} s in all, PyInstaller ${T_PYI} s"
