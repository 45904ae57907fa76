#!/usr/bin/env bash
# Build Easel.app and a DMG on macOS (Apple silicon), from a clean clone:
#
#   bash installer/macos/build.sh
#
# Steps: a build venv (build/pyi-venv-mac) with torch (macOS wheels run on the CPU and on
# Apple's GPU through MPS; there is no CUDA on macOS), Easel and PyInstaller; PyInstaller on
# installer/easel.spec (the BUNDLE step makes dist/Easel.app: easel-gui is its main
# executable, the console `easel` sits beside it in Contents/MacOS); a check of its Info.plist;
# signing, inside out; the bundle's self-test, a training run with a spawned render worker
# and one headless start of the app; notarisation and stapling of the app; a DMG of the
# stapled app; notarisation and stapling of the DMG.
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

# ------------------------------------------------------------------ the app's Info.plist
step "Info.plist"
# PyInstaller's BUNDLE writes LSBackgroundOnly=True when the COLLECT's last executable is a
# console one (here `easel`); the spec overrides it. A background-only app gets no Dock icon
# or menu bar and never comes to the front, and no console self-test would notice.
"$PY" - "$APP" <<'PYCHECK'
import plistlib, re, sys
from pathlib import Path

app = Path(sys.argv[1])
info = plistlib.loads((app / "Contents" / "Info.plist").read_bytes())
problems = []
if info.get("LSBackgroundOnly", False) is not False:
    problems.append(f"LSBackgroundOnly is {info['LSBackgroundOnly']!r}: the app would be background-only")
if not re.fullmatch(r"\d+(\.\d+){0,2}", str(info.get("CFBundleVersion", ""))):
    problems.append(f"CFBundleVersion is {info.get('CFBundleVersion')!r}, not 1-3 integers")
if info.get("CFBundleExecutable") != "easel-gui":
    problems.append(f"the main executable is {info.get('CFBundleExecutable')!r}, not easel-gui")
if not (app / "Contents" / "MacOS" / "easel").is_file():
    problems.append("Contents/MacOS/easel (the command line) is missing")
for key in ("CFBundleIdentifier", "CFBundleShortVersionString", "CFBundleVersion", "LSBackgroundOnly"):
    print(f"  {key} = {info.get(key)!r}")
if problems:
    sys.exit("macos/build.sh: Info.plist: " + "; ".join(problems))
PYCHECK

# ------------------------------------------------------------------ sign, inside out
# Apple's order (TN2206, "Signing Mac software with code signing"): every nested library and
# executable first, then each framework bundle, then the app; no --deep, which signs nested
# code with the app's options and entitlements. Executables get the hardened runtime with
# the entitlements; libraries get the hardened runtime only. A secure timestamp on each:
# notarisation needs both.
sign_app() {
    local path kind
    while IFS= read -r -d '' path; do
        if [[ -d "$path" ]]; then  # a .framework: signed after everything inside it
            codesign --force --options runtime --timestamp --sign "$IDENTITY" "$path"
            continue
        fi
        [[ "$path" == "$APP/Contents/MacOS/easel-gui" ]] && continue  # the app's own signature
        kind=$(file -b "$path")
        case "$kind" in
            *Mach-O*executable*)
                codesign --force --options runtime --timestamp \
                    --entitlements "$ENTITLEMENTS" --sign "$IDENTITY" "$path" ;;
            *Mach-O*)
                codesign --force --options runtime --timestamp --sign "$IDENTITY" "$path" ;;
        esac
    done < <(find "$APP/Contents" -depth \( -type f -o -type d -name '*.framework' \) -print0)
    codesign --force --options runtime --timestamp \
        --entitlements "$ENTITLEMENTS" --sign "$IDENTITY" "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"
}

if [[ -n "$IDENTITY" ]]; then
    step "codesign, inside out ($IDENTITY)"
    sign_app
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

step "bundle check: easel-gui opens its window and closes (headless)"
# The app's main executable, once: Qt's offscreen platform needs no screen, and
# EASEL_STARTUP_PROBE=1 makes the app say "easel: window shown" and close. macOS has no
# `timeout`: the loop below stops it after 3 minutes.
GUI_OUT="$CHECK_HOME/easel-gui.out"
QT_QPA_PLATFORM=offscreen EASEL_STARTUP_PROBE=1 EASEL_HOME="$CHECK_HOME" \
    "$APP/Contents/MacOS/easel-gui" >"$GUI_OUT" 2>&1 &
GUI_PID=$!
for _ in $(seq 180); do kill -0 "$GUI_PID" 2>/dev/null || break; sleep 1; done
if kill -0 "$GUI_PID" 2>/dev/null; then
    kill "$GUI_PID"; cat "$GUI_OUT"
    echo "macos/build.sh: easel-gui did not close within 3 minutes" >&2; exit 1
fi
GUI_STATUS=0
wait "$GUI_PID" || GUI_STATUS=$?
if [[ $GUI_STATUS -ne 0 ]] || ! grep -qx "easel: window shown" "$GUI_OUT"; then
    cat "$GUI_OUT"
    echo "macos/build.sh: easel-gui failed (exit status $GUI_STATUS)" >&2; exit 1
fi
# Nothing above may have changed the signed app (a written file breaks its seal).
[[ -z "$IDENTITY" ]] || codesign --verify --deep --strict "$APP"

# ------------------------------------------------------------------ notarisation
NOTARY=()
if [[ -n "${EASEL_NOTARY_PROFILE:-}" ]]; then
    NOTARY=(--keychain-profile "$EASEL_NOTARY_PROFILE")
elif [[ -n "${EASEL_APPLE_ID:-}" && -n "${EASEL_TEAM_ID:-}" && -n "${EASEL_APP_PASSWORD:-}" ]]; then
    NOTARY=(--apple-id "$EASEL_APPLE_ID" --team-id "$EASEL_TEAM_ID" --password "$EASEL_APP_PASSWORD")
fi
NOTARISE=0
[[ -n "$IDENTITY" && ${#NOTARY[@]} -gt 0 ]] && NOTARISE=1

# Submit a file to Apple's notary service and wait; on any outcome but Accepted, print the
# service's log for the submission (it names each file that failed and why) and stop.
notarise() {
    local file="$1" result id status
    result=$(xcrun notarytool submit "$file" "${NOTARY[@]}" --wait --output-format json) || true
    read -r id status < <("$PY" -c '
import json, sys
try:
    answer = json.loads(sys.stdin.read())
except ValueError:
    answer = {}
print(answer.get("id") or "-", answer.get("status") or "-")' <<<"$result")
    echo "notarytool: $file: $status (submission $id)"
    if [[ "$status" != Accepted ]]; then
        echo "$result"
        [[ "$id" == - ]] || xcrun notarytool log "$id" "${NOTARY[@]}"
        echo "macos/build.sh: notarisation of $file failed" >&2
        exit 1
    fi
}

if [[ $NOTARISE == 1 ]]; then
    # The app first, so that its ticket can be stapled into it: an Easel.app copied out of
    # the disk image then opens without Gatekeeper asking Apple online (Easel is offline).
    step "notarisation of $APP"
    ZIP="build/Easel-notary.zip"
    rm -f "$ZIP"
    ditto -c -k --keepParent "$APP" "$ZIP"
    notarise "$ZIP"
    rm -f "$ZIP"
    xcrun stapler staple "$APP"
    xcrun stapler validate "$APP"
    spctl --assess --type execute --verbose=2 "$APP"
fi

# ------------------------------------------------------------------ DMG
step "DMG"
DMG="dist/Easel-$VERSION-macos-$ARCH.dmg"
STAGE="build/dmg"
rm -rf "$STAGE" "$DMG"
mkdir -p "$STAGE"
ditto "$APP" "$STAGE/Easel.app"  # ditto keeps the stapled ticket, extended attributes, links
ln -s /Applications "$STAGE/Applications"  # drag Easel onto it to install
hdiutil create -volname "Easel $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
rm -rf "$STAGE"
if [[ -n "$IDENTITY" ]]; then
    codesign --force --timestamp --sign "$IDENTITY" "$DMG"
fi

if [[ $NOTARISE == 1 ]]; then
    step "notarisation of $DMG"
    notarise "$DMG"
    # The DMG's own ticket: Gatekeeper accepts the download offline too.
    xcrun stapler staple "$DMG"
    xcrun stapler validate "$DMG"
    spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG"
elif [[ -z "$IDENTITY" ]]; then
    echo "note: not notarised (needs EASEL_MACOS_IDENTITY and EASEL_NOTARY_PROFILE)."
else
    echo "note: not notarised: set EASEL_NOTARY_PROFILE (or EASEL_APPLE_ID, EASEL_TEAM_ID and"
    echo "      EASEL_APP_PASSWORD) to submit Easel.app and $DMG to Apple's notary service."
fi

echo
echo "Easel $VERSION for macOS $ARCH, torch $TORCH_VERSION"
echo "  app          $APP ($(du -sm "$APP" | cut -f1) MB)"
echo "  disk image   $DMG ($(du -sm "$DMG" | cut -f1) MB)"
echo "  build time   $(( $(date +%s) - T0 )) s"
