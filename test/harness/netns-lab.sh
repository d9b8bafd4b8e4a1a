#!/usr/bin/env bash
# The in-namespace half of test/harness/netns-lab.ts (tests only; product code never runs a shell).
#
#   ip netns exec NS unshare --mount --propagation slave netns-lab.sh daemons LAB_DIR
#     starts a private virtlogd + libvirtd in the lab's network namespace (so QEMU's taps are created there,
#     next to the lab bridge) and in a mount namespace of their own, where the lab's directories stand in for
#     every path libvirt keeps state or config in. The system daemons keep theirs; nothing mounted here is seen
#     outside. The daemons keep this mount namespace alive; when they exit it goes, with every mount made here.
#   ip netns exec NS netns-lab.sh exec PROGRAM [ARG...]
#     runs a program in the lab's network namespace (with /sys showing the lab's interfaces).
set -euo pipefail

# Every new mount namespace starts as a copy of the host's mounts. Where the host's / is private (no
# propagation, as on this CI VM) a copy stays mounted here after the host unmounts the original: the filesystem
# and its loop device would stay busy, and another test's leak check would see a loop device it already
# detached. Drop what tests mount (loop-backed filesystems, anything under the temp dirs) and other namespaces'
# handles (/run/netns/*, which would keep a deleted namespace alive). Innermost first.
drop_foreign_mounts() {
  local target rest source
  while read -r _ _ _ _ target rest; do
    source=${rest#* - }; source=${source#* }; source=${source%% *}
    case "$target" in
      /var/tmp/* | /tmp/* | /mnt/* | /media/* | /run/netns/*) umount -l "$target" 2>/dev/null || true; continue ;;
    esac
    case "$source" in
      /dev/loop* | /dev/nbd* | /dev/mapper/*) umount -l "$target" 2>/dev/null || true ;;
    esac
  done < <(tac /proc/self/mountinfo)
}

mode=${1:?usage: netns-lab.sh daemons LAB_DIR | exec PROGRAM [ARG...]}
shift
case "$mode" in
  daemons)
    lab=${1:?LAB_DIR missing}
    drop_foreign_mounts
    mount --bind "$lab/run" /run/libvirt
    mount --bind "$lab/lib" /var/lib/libvirt
    mount --bind "$lab/cache" /var/cache/libvirt
    mount --bind "$lab/log" /var/log/libvirt
    mount --bind "$lab/etc" /etc/libvirt
    # virtlogd first: QEMU's serial log and console output go through it. Both pid files default to /run/*.pid,
    # where the system daemons keep theirs.
    virtlogd -d -p "$lab/virtlogd.pid"
    libvirtd -d -p "$lab/libvirtd.pid"
    ;;
  exec)
    drop_foreign_mounts
    exec "$@"
    ;;
  *)
    echo "netns-lab.sh: unknown mode '$mode'" >&2
    exit 2
    ;;
esac
