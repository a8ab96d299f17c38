#!/usr/bin/env bash
# Test rig only: a minimal Debian root holding a newer Nix than bookworm's 2.8,
# for tests that run one cache against two Nix versions (test/rig/nix-portable
# runs it under bwrap when RIG_NIX_ROOT points at it).
#   test/rig/nix-root.sh [suite]     (default trixie: Nix 2.26)
# Built once per machine, outside the checkout, and reused: prints the root's path.
# It lives where an unprivileged test user can enter it (not under root's 0700 home).
# Needs root (debootstrap) and Debian's mirror, read from this machine's apt sources.
set -euo pipefail
suite=${1:-trixie}
cache=${NSC_RIG_CACHE:-/var/cache/nix-store-cache-rig}
root="$cache/debian-$suite"

if [ -f "$root/.complete" ]; then
  echo "$root"
  exit 0
fi

mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
  grep -v security | head -n 1 || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

sudo=''
[ "$(id -u)" = 0 ] || sudo='sudo'
$sudo rm -rf "$root.partial"
$sudo mkdir -p "$cache"
echo "nix-root: debootstrap $suite from $mirror into $root (once per machine)" >&2
$sudo debootstrap --variant=minbase "$suite" "$root.partial" "$mirror" >&2
# Newer suites may carry Release files whose Valid-Until has passed on a mirror snapshot.
$sudo chroot "$root.partial" sh -c \
  'apt-get -o Acquire::Check-Valid-Until=false update -qq &&
   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nix-bin >/dev/null &&
   apt-get clean' >&2
$sudo touch "$root.partial/.complete"
$sudo mv "$root.partial" "$root"
echo "$root"
