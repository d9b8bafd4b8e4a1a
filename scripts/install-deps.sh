#!/usr/bin/env bash
# Installs what vmforge needs on a Debian 12 host (as root): host tools from apt, npm dependencies, and the
# build. Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
  qemu-system-x86 qemu-utils qemu-block-extra
  debootstrap zstd pigz xz-utils tar
  e2fsprogs xfsprogs dosfstools fdisk util-linux mount
  grub-pc-bin grub2-common ovmf
  acl attr libxml2-utils openssl iproute2 iputils-ping ca-certificates
  bind9-dnsutils bind9 dnsmasq-base xorriso openssh-client parted
  bubblewrap python3-gi gir1.2-nm-1.0
)

if [ "$(id -u)" -ne 0 ]; then
  echo "vmforge's setup must run as root (it installs packages and drives libvirt, loop devices and mounts)." >&2
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "vmforge needs Node.js 20 or newer (found: $(node -v 2>/dev/null || echo none))." >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "==> npm run build"
npm run -s build
