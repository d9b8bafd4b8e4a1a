/**
 * The accelerator probe's guest: one 512-byte x86 boot sector, made here so the probe needs no download and no
 * kernel. SeaBIOS loads it at 0:7C00 in real mode; it writes the marker to COM1 (0x3F8) byte by byte and halts.
 * QEMU's UART sends what is written to its transmit register whatever the baud rate, so no set-up beyond
 * clearing DLAB is needed; TCG runs it in well under a second, a working KVM in a few milliseconds.
 */

const SECTOR = 512;
const LOAD_ADDRESS = 0x7c00;

/** The line the probe guest prints: the nonce ties it to one probe run. */
export function probeMarker(nonce: string): string {
  return `VMFORGE-ACCEL-PROBE-OK ${nonce}`;
}

/** A boot sector that prints `probeMarker(nonce)` + CRLF on COM1, then halts. */
export function markerBootSector(nonce: string): Uint8Array {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(nonce)) throw new Error(`probe nonce must be 1-64 letters, digits or -: ${JSON.stringify(nonce)}`);
  const code = [
    0xfa, //             cli
    0x31, 0xc0, //       xor ax, ax
    0x8e, 0xd8, //       mov ds, ax        (lodsb reads ds:si)
    0xfc, //             cld
    0xba, 0xfb, 0x03, // mov dx, 0x3fb     (line control register)
    0xb0, 0x03, //       mov al, 3         (8N1, DLAB off: 0x3f8 is the transmit register)
    0xee, //             out dx, al
    0xbe, 0x00, 0x00, // mov si, message   (patched below)
    0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xac, //             next: lodsb
    0x84, 0xc0, //       test al, al
    0x74, 0x03, //       jz done
    0xee, //             out dx, al
    0xeb, 0xf8, //       jmp next
    0xf4, //             done: hlt
    0xeb, 0xfd, //       jmp done
  ];
  const message = LOAD_ADDRESS + code.length;
  code[13] = message & 0xff;
  code[14] = message >> 8;
  const text = new TextEncoder().encode(`${probeMarker(nonce)}\r\n\0`);
  return sector([...code, ...text]);
}

/** A boot sector that prints nothing and halts: the probe's timeout path, for tests. */
export function silentBootSector(): Uint8Array {
  return sector([
    0xfa, //       cli
    0xf4, //       hlt
    0xeb, 0xfd, // jmp hlt
  ]);
}

function sector(bytes: number[]): Uint8Array {
  if (bytes.length > SECTOR - 2) throw new Error('boot sector code too long');
  const out = new Uint8Array(SECTOR);
  out.set(bytes);
  out[510] = 0x55;
  out[511] = 0xaa;
  return out;
}
