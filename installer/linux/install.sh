#!/usr/bin/env bash
# Install Easel for the current user (no root needed). Run from the unpacked tarball:
#
#   ./install.sh            install (or upgrade) into ~/.local
#   PREFIX=DIR ./install.sh install under DIR instead of ~/.local
#
# What goes where:
#   $PREFIX/opt/easel/                              the app (this folder's Easel/)
#   $PREFIX/bin/easel, $PREFIX/bin/easel-gui        links to its two executables
#   $PREFIX/share/applications/easel.desktop        the menu entry
#   $PREFIX/share/icons/hicolor/{256x256,512x512}/apps/easel.png
# Your pictures, models and settings are never here: they live in the per-user folders
# that `easel info` lists, and stay when Easel is upgraded or uninstalled.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="${PREFIX:-$HOME/.local}"
APP="$PREFIX/opt/easel"
BIN="$PREFIX/bin"
APPS="$PREFIX/share/applications"
ICONS="$PREFIX/share/icons/hicolor"

if [[ ! -x "$HERE/Easel/easel" || ! -x "$HERE/Easel/easel-gui" ]]; then
    echo "install.sh: run me from the unpacked Easel tarball (Easel/easel not found)" >&2
    exit 1
fi

echo "Installing Easel into $APP"
mkdir -p "$PREFIX/opt" "$BIN" "$APPS" "$ICONS/256x256/apps" "$ICONS/512x512/apps"
# Copy next to the old version first and swap, so a failed copy leaves the old one working.
rm -rf "$APP.new"
cp -a "$HERE/Easel" "$APP.new"
cp "$HERE/uninstall.sh" "$APP.new/uninstall.sh"
rm -rf "$APP.old"
if [[ -e "$APP" ]]; then mv "$APP" "$APP.old"; fi
mv "$APP.new" "$APP"
rm -rf "$APP.old"

ln -sfn "$APP/easel" "$BIN/easel"
ln -sfn "$APP/easel-gui" "$BIN/easel-gui"
cp "$HERE/easel-256.png" "$ICONS/256x256/apps/easel.png"
cp "$HERE/easel-512.png" "$ICONS/512x512/apps/easel.png"
sed "s|@BIN@|$APP|g" "$HERE/easel.desktop.in" > "$APPS/easel.desktop"
chmod 644 "$APPS/easel.desktop"

# Refresh the menu and icon caches where the desktop has the tools (harmless when absent).
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$APPS" || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t "$ICONS" 2>/dev/null || true
fi

echo "Easel is installed: find it in your applications menu, or run 'easel-gui'."
echo "Check the installation with:  $BIN/easel --self-test"
case ":$PATH:" in
    *":$BIN:"*) ;;
    *) echo "Note: $BIN is not on your PATH; add it to run 'easel' from a terminal." ;;
esac
echo "To uninstall:  $APP/uninstall.sh"
