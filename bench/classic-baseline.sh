#!/usr/bin/env bash
# The classic way to make a libvirt VM from a gzip'ed root tarball, as a shell recipe: the baseline that
# bench/compare.ts measures vmforge against (issue #6). Kept deliberately plain: the tools with their default
# options, one after the other, as the recipe is usually written down.
#
# Usage (root): bench/classic-baseline.sh VMNAME GZIP_TARBALL DISK_SIZE OUTDIR
#   VMNAME        libvirt domain name (the domain is defined, never started)
#   GZIP_TARBALL  root filesystem as `tar czpf` makes it (paths ./bin, ./etc, ...)
#   DISK_SIZE     e.g. 4G; the last 512 MiB become swap
#   OUTDIR        where VMNAME.img is written
#
# Partition access: on a normal host the recipe uses `kpartx -av`. This machine has no device-mapper, so the
# partitions are announced to the kernel with `partx -a` on the whole-disk loop device instead (same effect:
# /dev/loopNp1, /dev/loopNp2). GRUB: the recipe runs grub-install on the whole-disk loop device. On this kernel
# grub-install copies its files into /boot/grub (modules, fonts, locale, with fsync) and then stops with "cannot
# find a GRUB drive for /dev/loopNp1" (partitions added with partx; a device.map with "(hd0) /dev/loopN" and
# --modules='part_msdos ext2' fail the same way). The script then does the rest of what grub-install would have
# done, as the closest equivalent: grub-mkimage for core.img and dd of boot.img and core.img (grub_rest below).
# Where grub-install works (kpartx, real partitions) it does everything and the fallback is not used.
#
# On success it leaves OUTDIR/VMNAME.img and the defined domain (the caller undefines them); on failure it
# removes everything it made (trap).
set -euo pipefail

if [ $# -ne 4 ]; then
  echo "usage: $0 VMNAME GZIP_TARBALL DISK_SIZE OUTDIR" >&2
  exit 2
fi
NAME=$1 TARBALL=$2 SIZE=$3 OUTDIR=$4
SWAP_MIB=512
IMG="$OUTDIR/$NAME.img"
MNT=$(mktemp -d /var/tmp/vmf-classic-mnt.XXXXXX)
LOOP=''
MOUNTED=0
DEFINED=0
OK=0

cleanup() {
  set +e
  if [ "$MOUNTED" = 1 ]; then umount "$MNT"; fi
  if [ -n "$LOOP" ]; then
    partx -d "$LOOP" 2>/dev/null
    losetup -d "$LOOP"
  fi
  rmdir "$MNT" 2>/dev/null
  if [ "$OK" != 1 ]; then
    if [ "$DEFINED" = 1 ]; then virsh -q undefine "$NAME" >/dev/null; fi
    rm -f "$IMG" "$OUTDIR/$NAME.xml"
    echo "classic-baseline: failed, cleaned up" >&2
  fi
}
trap cleanup EXIT

# 1. Sparse disk image and an msdos partition table: root, then swap at the end.
truncate -s "$SIZE" "$IMG"
# (libparted calls `udevadm settle`, which this machine lacks; that one message is dropped.)
parted -s "$IMG" -- mklabel msdos \
  mkpart primary ext4 1MiB "-${SWAP_MIB}MiB" \
  mkpart primary linux-swap "-${SWAP_MIB}MiB" 100% \
  set 1 boot on 2> >(grep -v 'udevadm: not found' >&2)

# 2. Partition devices (kpartx -av "$IMG" on hosts with device-mapper).
LOOP=$(losetup -f --show "$IMG")
partx -a "$LOOP"
command -v udevadm >/dev/null && udevadm settle
for p in 1 2; do
  for _ in $(seq 50); do [ -b "${LOOP}p$p" ] && break; sleep 0.1; done
done

# 3. Filesystems, default options.
mkswap "${LOOP}p2" >/dev/null
mkfs.ext4 -q -F "${LOOP}p1"
mount "${LOOP}p1" "$MNT"
MOUNTED=1

# 4. The root filesystem from the tarball, then flush it.
tar -xzpf "$TARBALL" --numeric-owner -C "$MNT"
sync

# 5. The usual edits.
ROOT_UUID=$(blkid -s UUID -o value "${LOOP}p1")
SWAP_UUID=$(blkid -s UUID -o value "${LOOP}p2")
echo "$NAME" > "$MNT/etc/hostname"
sed -i '/^127\.0\.1\.1/d' "$MNT/etc/hosts"
echo "127.0.1.1	$NAME" >> "$MNT/etc/hosts"
cat > "$MNT/etc/fstab" <<EOF
UUID=$ROOT_UUID / ext4 errors=remount-ro 0 1
UUID=$SWAP_UUID none swap sw 0 0
EOF
mkdir -p "$MNT/etc/network"
cat > "$MNT/etc/network/interfaces" <<EOF
auto lo
iface lo inet loopback

auto ens3
iface ens3 inet dhcp
EOF
rm -f "$MNT/etc/machine-id" && touch "$MNT/etc/machine-id"

# 6. Boot loader.
# What grub-install (grub-bios-setup) writes after copying its files: core.img from grub-mkimage into the
# sectors after the MBR, boot.img's code into sector 0 before the partition table. grub-mkimage already sets
# diskboot's blocklist to "the rest of core.img from sector 2" and boot.img loads sector 1, so core.img at
# sector 1 boots as it is.
grub_rest() {
  local core
  core=$(mktemp /var/tmp/vmf-classic-core.XXXXXX)
  grub-mkimage -O i386-pc -o "$core" -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2
  dd if="$core" of="$LOOP" bs=512 seek=1 conv=notrunc status=none
  dd if=/usr/lib/grub/i386-pc/boot.img of="$LOOP" bs=440 count=1 conv=notrunc status=none
  rm -f "$core"
  if [ ! -e "$MNT/boot/grub/i386-pc/normal.mod" ]; then
    mkdir -p "$MNT/boot/grub/i386-pc"
    cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst "$MNT/boot/grub/i386-pc/"
  fi
}
if ! GRUB_ERR=$(grub-install --target=i386-pc --boot-directory="$MNT/boot" "$LOOP" 2>&1); then
  echo "classic-baseline: grub-install stopped (${GRUB_ERR##*error: }); core.img + boot.img written with grub-mkimage + dd" >&2
  grub_rest
fi
KVER=$(basename "$(ls "$MNT"/boot/vmlinuz-* | sort -V | tail -1)")
KVER=${KVER#vmlinuz-}
cat > "$MNT/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=0
set timeout=0
insmod part_msdos
insmod ext2
search --no-floppy --fs-uuid --set=root $ROOT_UUID
menuentry 'Debian GNU/Linux' {
	linux /boot/vmlinuz-$KVER root=UUID=$ROOT_UUID ro console=ttyS0,115200n8
	initrd /boot/initrd.img-$KVER
}
EOF

# 7. Release the disk.
umount "$MNT"
MOUNTED=0
partx -d "$LOOP"
losetup -d "$LOOP"
LOOP=''

# 8. Define the domain (no NIC here: the benchmark never starts it).
cat > "$OUTDIR/$NAME.xml" <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$IMG'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
</domain>
EOF
virsh -q define "$OUTDIR/$NAME.xml" >/dev/null
DEFINED=1
OK=1
echo "classic-baseline: $NAME defined, disk $IMG"
