#!/usr/bin/env bash
# The demo: install everything, start libvirt, check the host (stopping with the fixes when something a build
# needs is missing), bootstrap a Debian template bundle (cached), build a VM named 'demo' from it and boot it,
# printing per-step timings and the guest's login prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/ensure-libvirt.sh
vmforge() { node dist/cli/main.js "$@"; }

echo "==> host check"
if ! vmforge host check; then
  echo "The host check found something a build needs that is missing or broken (the ✗ lines above, each with its fix)." >&2
  echo "Fix those, then run ./scripts/demo.sh again. docs/host.md explains every check." >&2
  exit 1
fi

echo "==> bundle: debian-bookworm (debootstrap on first run, ~2-3 min; cached afterwards)"
vmforge bundle bootstrap debian --name debian-bookworm

if vmforge vm show demo >/dev/null 2>&1; then
  echo "==> a VM named demo exists from an earlier run: destroying it first"
  vmforge vm destroy demo
fi

echo "==> vm build demo"
# --net user: the demo attaches to nothing on the host's networks (no bridge needed).
vmforge vm build demo --bundle debian-bookworm --memory 1G --disk 4G --swap 256M --net user --wait

echo
echo "Done. Try:  node dist/cli/main.js vm show demo    |   virsh console demo   |   node dist/cli/main.js vm destroy demo"
