#!/usr/bin/env bash
# Starts libvirt when it is not running. Hosts with systemd use the service; hosts without (containers, CI)
# get virtlogd and libvirtd started as daemons, virtlogd first (libvirt's serial logs go through it).
set -euo pipefail
uri=${VMFORGE_LIBVIRT_URI:-qemu:///system}
if timeout 15 virsh -q -c "$uri" version >/dev/null 2>&1; then exit 0; fi
if [ -d /run/systemd/system ]; then
  systemctl start virtlogd.socket libvirtd.socket libvirtd.service 2>/dev/null || systemctl start libvirtd
else
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
fi
for _ in $(seq 1 60); do
  if timeout 5 virsh -q -c "$uri" version >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
echo "libvirt at $uri did not come up; see /var/log/libvirt/libvirtd.log" >&2
exit 1
