#!/usr/bin/env bash
# What writing new data into the page cache costs on this host, against the in-kernel copy that `cp` does
# (issue #3's baseline is `cp` + `sync`). A repository transfer must hash what it receives, so its bytes pass
# through the receiver's memory and reach the file with write(); `cp` uses copy_file_range and never does.
#
# Usage (root or not): bench/page-cache-write.sh [DIR=/var/tmp] [MiB=1024] [runs=3]
# Each variant copies the same cached source file of MiB to a new file in DIR and fsyncs it; before each one the
# script waits PAUSE seconds (default 8) so memory freed by the previous variant is as the host left it: on a VM
# whose balloon reports free pages to the hypervisor, touching such pages again is what makes write() slow.
set -euo pipefail
DIR=${1:-/var/tmp} MIB=${2:-1024} RUNS=${3:-3} PAUSE=${PAUSE:-8}
WORK=$(mktemp -d "$DIR/vmf-pagecache.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SRC="$WORK/src"
head -c "$((MIB * 1024 * 1024))" /dev/urandom > "$SRC"
sync -f "$SRC"
cat "$SRC" > /dev/null

NODE_COPY='
const fs = require("node:fs");
const [src, dst] = process.argv.slice(1);
const buf = Buffer.allocUnsafe(4 << 20);
const i = fs.openSync(src, "r"), o = fs.openSync(dst, "wx", 0o600);
for (let n; (n = fs.readSync(i, buf, 0, buf.length, null)) > 0; ) for (let off = 0; off < n; ) off += fs.writeSync(o, buf, off, n - off);
fs.fsyncSync(o);
'

variant() { # label, command... (DST is the new file)
  local label=$1; shift
  for r in $(seq "$RUNS"); do
    sleep "$PAUSE"
    /usr/bin/time -f "$label	%e	%U	%S" -a -o "$WORK/times" "$@"
    rm -f "$WORK/dst"
  done
}
variant 'cp + sync (copy_file_range)' sh -c 'cp "$0" "$1" && sync "$1"' "$SRC" "$WORK/dst"
variant 'dd bs=4M + sync (write() from a reused buffer)' sh -c 'dd if="$0" of="$1" bs=4M status=none && sync "$1"' "$SRC" "$WORK/dst"
variant 'node: readSync/writeSync 4 MiB reused buffer + fsync' node -e "$NODE_COPY" "$SRC" "$WORK/dst"
# The same write() into pages the file already has in the page cache: the copy itself is cheap.
cp "$SRC" "$WORK/over" && sync "$WORK/over"
for r in $(seq "$RUNS"); do
  sleep "$PAUSE"
  /usr/bin/time -f "dd over cached pages of an existing file	%e	%U	%S" -a -o "$WORK/times" \
    dd if="$SRC" of="$WORK/over" bs=4M conv=notrunc status=none
done

echo "$MIB MiB, $RUNS run(s) each, medians; ${PAUSE}s pause before each; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-58s %8s %8s %8s\n' 'what' 'wall s' 'user s' 'sys s'
awk -F'\t' '{ w[$1] = w[$1] " " $2; u[$1] = u[$1] " " $3; s[$1] = s[$1] " " $4; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
  function med(str,   a, k, i, j, t) { k = split(substr(str, 2), a, " "); for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t } return a[int((k + 1) / 2)] }
  END { for (i = 1; i <= n; i++) printf "%-58s %8s %8s %8s\n", order[i], med(w[order[i]]), med(u[order[i]]), med(s[order[i]]) }' "$WORK/times"
if [ -r /sys/bus/virtio/drivers/virtio_balloon ] && ls /sys/bus/virtio/drivers/virtio_balloon/virtio* >/dev/null 2>&1; then
  for f in /sys/bus/virtio/drivers/virtio_balloon/virtio*/features; do
    # Feature bit 5: VIRTIO_BALLOON_F_REPORTING (free page reporting).
    echo "virtio balloon: free page reporting $( [ "$(cut -c6 "$f")" = 1 ] && echo on || echo off )"
  done
fi
