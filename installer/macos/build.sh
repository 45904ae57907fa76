#!/usr/bin/env bash
# Build Easel.app and a DMG on macOS (Apple silicon), from a clean clone:
#
#   bash installer/macos/build.sh
#
# Steps: a build venv (build/pyi-venv-mac) with torch (macOS wheels run on the CPU and on
# Apple's GPU through MPS; there is no CUDA on macOS), Easel and PyInstaller; PyInstaller on
# installer/easel.spec (the BUNDLE step makes dist/Easel.app: easel-gui is its main
# executable, the console `easel` sits beside it in Contents/MacOS); signing; the bundle's
# self-test and a training run with a spawned render worker; a DMG; notarisation; stapling.
#
# Signing and notarisation run when their settings are present and are skipped, with a
# message, when not (an unsigned app runs on the build machine; elsewhere Gatekeeper refuses
# it until the user allows it in System Settings > Privacy & Security):
#   EASEL_MACOS_IDENTITY   codesign identity, e.g. "Developer ID Application: Jane Doe (TEAMID)"
#                          (`security find-identity -v -p codesigning` lists yours)
#   EASEL_NOTARY_PROFILE   a notarytool keychain profile, made once with
#                          xcrun notarytool store-credentials easel-notary \
#                              --apple-id YOU@EXAMPLE.COM --team-id TEAMID --password APP-PASSWORD
#   or instead of a profile: EASEL_APPLE_ID, EASEL_TEAM_ID, EASEL_APP_PASSWORD (an
#                          app-specific password from appleid.apple.com)
# Other settings: EASEL_TORCH_VERSION (default 2.13.0), PYTHON (default python3.11),
# EASEL_BUILD_VENV, EASEL_CLEAN=1 (new venv), EASEL_BUNDLE_ID (default org.easel.Easel).
# torch publishes macOS wheels for arm64 only (since torch 2.3), so the app is arm64.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
[[ "$(uname -s)" == Darwin ]] || { echo "macos/build.sh: run me on macOS" >&2; exit 2; }
T0=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - T0 ))"; }

TORCH_VERSION="${EASEL_TORCH_VERSION:-2.13.0}"
VENV="${EASEL_BUILD_VENV:-build/pyi-venv-mac}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
ENTITLEMENTS="installer/macos/entitlements.plist"
IDENTITY="${EASEL_MACOS_IDENTITY:-}"

# ------------------------------------------------------------------ the build environment
step "build environment $VENV (torch $TORCH_VERSION)"
if [[ "${EASEL_CLEAN:-0}" == 1 || ! -x "$VENV/bin/python" || \
      "$(cat "$VENV/.easel-torch" 2>/dev/null)" != "mac-$TORCH_VERSION" ]]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "macos/build.sh: Python 3.11 or newer needed (set PYTHON=...)" >&2; exit 2; }
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet "torch==$TORCH_VERSION"
echo "mac-$TORCH_VERSION" > "$VENV/.easel-torch"
"$PY" -m pip install --quiet --upgrade "$ROOT"
"$PY" -m pip install --quiet -r installer/requirements-build.txt
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
ARCH=$(uname -m)
[[ -f resources/icons/easel.icns ]] || "$PY" installer/make_icon.py

# ------------------------------------------------------------------ PyInstaller
step "PyInstaller (installer/easel.spec)"
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --workpath build/pyi-work --distpath dist installer/easel.spec
APP="dist/Easel.app"
[[ -d "$APP" ]] || { echo "macos/build.sh: PyInstaller made no $APP" >&2; exit 1; }

# ------------------------------------------------------------------ sign
if [[ -n "$IDENTITY" ]]; then
    step "codesign ($IDENTITY)"
    # Hardened runtime (--options runtime) and a secure timestamp: both required for
    # notarisation. --deep signs every nested library and both executables.
    codesign --force --deep --options runtime --timestamp \
        --entitlements "$ENTITLEMENTS" --sign "$IDENTITY" "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"
else
    echo "note: EASEL_MACOS_IDENTITY is not set: Easel.app is only ad-hoc signed (by PyInstaller);"
    echo "      it runs here, but other Macs refuse it until it is signed and notarised."
fi

# ------------------------------------------------------------------ check the (signed) app
CHECK_HOME=$(mktemp -d)
trap 'rm -rf "$CHECK_HOME"' EXIT
step "bundle check: easel --self-test"
EASEL_HOME="$CHECK_HOME" "$APP/Contents/MacOS/easel" --self-test
step "bundle check: easel train tiny_vae --steps 3 with a spawned render worker"
# macOS starts DataLoader workers by spawning the executable again: this checks
# freeze_support in the frozen entry (installer/entry_easel.py) under the hardened runtime.
OMP_NUM_THREADS=1 EASEL_HOME="$CHECK_HOME" "$APP/Contents/MacOS/easel" train tiny_vae \
    --steps 3 --set data.workers=1 --out "$CHECK_HOME/train"
[[ -f "$CHECK_HOME/train/tiny_vae.safetensors" ]]

# ------------------------------------------------------------------ DMG
step "DMG"
DMG="dist/Easel-$VERSION-macos-$ARCH.dmg"
STAGE="build/dmg"
rm -rf "$STAGE" "$DMG"
mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"  # drag Easel onto it to install
hdiutil create -volname "Easel $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
rm -rf "$STAGE"
if [[ -n "$IDENTITY" ]]; then
    codesign --force --timestamp --sign "$IDENTITY" "$DMG"
fi

# ------------------------------------------------------------------ notarise and staple
NOTARY=()
if [[ -n "${EASEL_NOTARY_PROFILE:-}" ]]; then
    NOTARY=(--keychain-profile "$EASEL_NOTARY_PROFILE")
elif [[ -n "${EASEL_APPLE_ID:-}" && -n "${EASEL_TEAM_ID:-}" && -n "${EASEL_APP_PASSWORD:-}" ]]; then
    NOTARY=(--apple-id "$EASEL_APPLE_ID" --team-id "$EASEL_TEAM_ID" --password "$EASEL_APP_PASSWORD")
fi
if [[ -n "$IDENTITY" && ${#NOTARY[@]} -gt 0 ]]; then
    step "notarisation (xcrun notarytool submit --wait)"
    xcrun notarytool submit "$DMG" "${NOTARY[@]}" --wait
    # The ticket goes into the DMG, so Gatekeeper accepts it offline too.
    xcrun stapler staple "$DMG"
    xcrun stapler validate "$DMG"
    spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG" || true
elif [[ -z "$IDENTITY" ]]; then
    echo "note: not notarised (needs EASEL_MACOS_IDENTITY and EASEL_NOTARY_PROFILE)."
else
    echo "note: not notarised: set EASEL_NOTARY_PROFILE (or EASEL_APPLE_ID, EASEL_TEAM_ID and"
    echo "      EASEL_APP_PASSWORD) to submit $DMG to Apple's notary service."
fi

echo
echo "Easel $VERSION for macOS $ARCH, torch $TORCH_VERSION"
echo "  app          $APP ($(du -sm "$APP" | cut -f1) MB)"
echo "  disk image   $DMG ($(du -sm "$DMG" | cut -f1) MB)"
echo "  build time   $(( $(date +%s) - T0 )) s"
