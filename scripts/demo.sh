#!/usr/bin/env bash
# The README's main job, offline, on the embedded default (the local backend):
# nix-store-cache runs `nix-shell -p hello cowsay` through the test rig's
# nix-portable stand-in twice: a cold run that builds and saves, then a warm run
# in a new location that restores and builds nothing. Then nix verifies the store.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/cli/index.js ] || npm run -s bundle
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export HOME="$work/home"
mkdir -p "$HOME"
launcher="$PWD/test/rig/nix-portable"

for run in cold warm; do
  echo "=== $run run (NP_LOCATION=$work/$run) ==="
  node dist/cli/index.js run \
    --systemDependencies "hello cowsay" \
    --run "cowsay $run run" \
    --nix-portable "$launcher" \
    --location "$work/$run" \
    --cache-dir "$work/cache" 2> >(grep -v '^  /nix/store' >&2)
done
echo "=== nix-store --verify --check-contents on the warm location ==="
NP_LOCATION="$work/warm" "$launcher" nix-store --verify --check-contents
echo "=== cache entries ==="
ls -l "$work/cache"
