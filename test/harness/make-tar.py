"""Writes a tar archive exactly as described, hostile members included (tarfile does not sanitize on write).

argv: OUT.tar SPEC.json, SPEC a list of members:
  {"name": "...", "type": "file"|"dir"|"symlink"|"hardlink"|"chr"|"fifo",
   "data": "text", "randomBytes": N, "link": "target", "major": M, "minor": N, "mode": 0o644}
"""
import io, json, os, sys, tarfile

class RandomReader(io.RawIOBase):
    def __init__(self, n):
        self.left = n
    def readable(self):
        return True
    def readinto(self, b):
        k = min(len(b), self.left)
        if k == 0:
            return 0
        b[:k] = os.urandom(k)
        self.left -= k
        return k

TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
         "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}

out, spec = sys.argv[1], json.load(open(sys.argv[2]))
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
    for m in spec:
        ti = tarfile.TarInfo(m["name"])
        ti.type = TYPES[m["type"]]
        ti.mode = m.get("mode", 0o755 if m["type"] == "dir" else 0o644)
        ti.mtime = 1700000000
        ti.linkname = m.get("link", "")
        ti.devmajor, ti.devminor = m.get("major", 0), m.get("minor", 0)
        f = None
        if m["type"] == "file":
            if "randomBytes" in m:
                ti.size, f = m["randomBytes"], io.BufferedReader(RandomReader(m["randomBytes"]), 1 << 20)
            else:
                data = m.get("data", "").encode()
                ti.size, f = len(data), io.BytesIO(data)
        t.addfile(ti, f)
