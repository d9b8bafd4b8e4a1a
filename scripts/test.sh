#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what the tests need, start libvirt, typecheck and lint, then
# unit, integration (root, real loop devices and libvirtd) and end-to-end (a real VM boots under QEMU).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/ensure-libvirt.sh
echo "==> typecheck + lint"
npm run -s check
echo "==> tests"
npx vitest run --project unit --project integration --project e2e "$@"
