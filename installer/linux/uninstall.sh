#!/usr/bin/env bash
# Remove Easel installed by install.sh (same PREFIX, default ~/.local).
#
#   uninstall.sh              remove the app, its links, menu entry and icons
#   uninstall.sh --purge      also delete your Easel data, settings and logs (models you
#                             trained, autosaves, training runs): asks first
set -euo pipefail

PREFIX="${PREFIX:-$HOME/.local}"
APP="$PREFIX/opt/easel"
BIN="$PREFIX/bin"
APPS="$PREFIX/share/applications"
ICONS="$PREFIX/share/icons/hicolor"
PURGE=0
[[ "${1:-}" == "--purge" ]] && PURGE=1

user_dirs=()
if [[ $PURGE == 1 && -x "$APP/easel" ]]; then
    # Ask Easel itself where its per-user folders are (platformdirs, or $EASEL_HOME).
    while IFS= read -r dir; do
        [[ -n "$dir" ]] && user_dirs+=("$dir")
    done < <("$APP/easel" info 2>/dev/null | awk '
        /^Folders:/ { inside = 1; next }
        /^[^ ]/     { inside = 0 }
        inside && ($1 == "data:" || $1 == "config:" || $1 == "logs:") {
            sub(/^ *[a-z]+: */, ""); print }')
fi

for link in "$BIN/easel" "$BIN/easel-gui"; do
    # only our links, never an `easel` installed some other way (pip, a source checkout)
    if [[ -L "$link" && "$(readlink "$link")" == "$APP/"* ]]; then rm -f "$link"; fi
done
rm -f "$APPS/easel.desktop" "$ICONS/256x256/apps/easel.png" "$ICONS/512x512/apps/easel.png"
rm -rf "$APP"
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$APPS" || true
fi
echo "Easel is uninstalled."

if [[ $PURGE == 1 && ${#user_dirs[@]} -gt 0 ]]; then
    echo "Your Easel data (trained models, autosaves, runs), settings and logs:"
    printf '  %s\n' "${user_dirs[@]}"
    read -r -p "Delete them for good? [y/N] " answer
    if [[ "$answer" == [yY]* ]]; then
        for d in "${user_dirs[@]}"; do
            if [[ -n "$d" && "$d" != "/" && "$d" != "$HOME" ]]; then
                rm -rf -- "$d"
                rmdir -- "$(dirname "$d")" 2>/dev/null || true  # e.g. ~/.local/state/Easel
            fi
        done
        echo "Deleted."
    fi
else
    echo "Your models, settings and logs were kept ('easel info' listed where they are)."
fi
