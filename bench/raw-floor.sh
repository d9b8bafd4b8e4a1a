#!/usr/bin/env bash
# The raw operations of a build and nothing else, as a shell script: what a build cannot go below on this host
# whatever program drives it (no Node, no checks, no guest edits, no undo journal, no inventory). bench/compare.ts
# runs it in the same run as the classic recipe, so issue #6's ratios can be set against it.
#
# Usage (root):
#   bench/raw-floor.sh cold VMNAME ZSTD_BLOB DISK_SIZE OUTDIR
#       sparse image, one loop device on the root partition, mkfs.ext4 (lazy init), mount, `tar -x` of the
#       bundle through `zstd -T0`, umount (the flush), detach, virsh define
#   bench/raw-floor.sh warm VMNAME GOLDEN_IMG DISK_SIZE OUTDIR
#       qcow2 overlay on the golden image, qemu-storage-daemon FUSE export, loop device on the root partition,
#       resize2fs, tune2fs -U, mount, umount, detach, stop the export, virsh define
# Both leave OUTDIR/VMNAME.img (+ .xml) and the defined domain (the caller undefines them); on failure they remove
# what they made. Swap is left out (vmforge writes its header as one page), so are GRUB and the edits.
set -euo pipefail

if [ $# -ne 5 ]; then
  echo "usage: $0 cold|warm VMNAME ZSTD_BLOB|GOLDEN_IMG DISK_SIZE OUTDIR" >&2
  exit 2
fi
MODE=$1 NAME=$2 SRC=$3 SIZE=$4 OUTDIR=$5
SWAP_BYTES=$((512 * 1024 * 1024))
OFFSET=$((1024 * 1024))
IMG="$OUTDIR/$NAME.img"
MNT=$(mktemp -d /var/tmp/vmf-floor-mnt.XXXXXX)
EXPORT="$OUTDIR/$NAME.raw"
LOOP='' MOUNTED=0 QSD='' DEFINED=0 OK=0

cleanup() {
  set +e
  if [ "$MOUNTED" = 1 ]; then umount "$MNT"; fi
  if [ -n "$LOOP" ]; then losetup -d "$LOOP"; fi
  if [ -n "$QSD" ]; then
    kill "$QSD" 2>/dev/null
    wait "$QSD" 2>/dev/null
    mountpoint -q "$EXPORT" 2>/dev/null && umount "$EXPORT"
  fi
  rm -f "$EXPORT"
  rmdir "$MNT" 2>/dev/null
  if [ "$OK" != 1 ]; then
    if [ "$DEFINED" = 1 ]; then virsh -q undefine "$NAME" >/dev/null; fi
    rm -f "$IMG" "$OUTDIR/$NAME.xml"
    echo "raw-floor: failed, cleaned up" >&2
  fi
}
trap cleanup EXIT

bytes=$(numfmt --from=iec "$SIZE")
ROOT_BYTES=$((bytes - OFFSET - SWAP_BYTES))

case "$MODE" in
  cold)
    truncate -s "$SIZE" "$IMG"
    FORMAT=raw
    LOOP=$(losetup --find --show --offset "$OFFSET" --sizelimit "$ROOT_BYTES" "$IMG")
    mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$LOOP"
    mount -t ext4 "$LOOP" "$MNT"
    MOUNTED=1
    tar -I 'zstd -T0' -x -f "$SRC" -C "$MNT" --numeric-owner --xattrs --xattrs-include='*' --acls
    ;;
  warm)
    FORMAT=qcow2
    qemu-img create -q -f qcow2 -b "$SRC" -F raw "$IMG" "$SIZE"
    : > "$EXPORT"
    qemu-storage-daemon --blockdev "driver=file,filename=$IMG,node-name=f" --blockdev driver=qcow2,file=f,node-name=q \
      --export "type=fuse,id=e,node-name=q,mountpoint=$EXPORT,writable=on" &
    QSD=$!
    for _ in $(seq 500); do mountpoint -q "$EXPORT" && break; sleep 0.01; done
    mountpoint -q "$EXPORT"
    LOOP=$(losetup --find --show --offset "$OFFSET" --sizelimit "$ROOT_BYTES" "$EXPORT")
    resize2fs -f "$LOOP" >/dev/null 2>&1
    tune2fs -U random "$LOOP" >/dev/null
    mount -t ext4 "$LOOP" "$MNT"
    MOUNTED=1
    ;;
  *)
    echo "raw-floor: mode must be cold or warm" >&2
    exit 2
    ;;
esac

umount "$MNT"
MOUNTED=0
losetup -d "$LOOP"
LOOP=''
if [ -n "$QSD" ]; then
  kill "$QSD"
  wait "$QSD" || true
  QSD=''
  rm -f "$EXPORT"
fi

cat > "$OUTDIR/$NAME.xml" <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='$FORMAT'/>
      <source file='$IMG'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
virsh -q define "$OUTDIR/$NAME.xml" >/dev/null
DEFINED=1
OK=1
