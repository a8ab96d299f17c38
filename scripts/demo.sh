#!/usr/bin/env bash
# The README's main job, offline: until the cache pipeline lands, it runs the
# test rig's scenario: nix-shell -p through the nix-portable stand-in in a fresh
# location, then nix's own verification of the store it left.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
export NP_LOCATION="$work/location" HOME="$work/home"
mkdir -p "$NP_LOCATION" "$HOME"
launcher=test/rig/nix-portable
"$launcher" nix-shell -p hello cowsay --run 'cowsay from nix-shell'
"$launcher" nix-store --verify --check-contents
echo "store paths: $(ls "$NP_LOCATION/.nix-portable/nix/store" | grep -vc '^\.links$')"
