import { describe, expect, it } from 'vitest';
import { markerBootSector, probeMarker, silentBootSector } from './probe-bootsector.js';
import { probeDomainXml, probeName, probeOwnerPid } from './probe-domain.js';

describe('probe boot sectors', () => {
  it('512 bytes with the boot signature; the message address points at the marker', () => {
    for (const s of [markerBootSector('ab12'), silentBootSector()]) {
      expect(s.length).toBe(512);
      expect([s[510], s[511]]).toEqual([0x55, 0xaa]);
    }
    const s = markerBootSector('ab12');
    // mov si, imm16 at offset 12: the marker's load address (0x7c00 + its offset in the sector).
    expect(s[12]).toBe(0xbe);
    const at = ((s[13] ?? 0) | ((s[14] ?? 0) << 8)) - 0x7c00;
    const text = new TextDecoder().decode(s.slice(at, at + probeMarker('ab12').length + 3));
    expect(text).toBe(`${probeMarker('ab12')}\r\n\0`);
    // The silent one writes nothing to any port (no `out`).
    expect([...silentBootSector().slice(0, 4)]).toEqual([0xfa, 0xf4, 0xeb, 0xfd]);
  });

  it('refuses a nonce that could break the marker', () => {
    expect(() => markerBootSector('a b')).toThrow(/nonce/);
    expect(() => markerBootSector('x'.repeat(65))).toThrow(/nonce/);
  });
});

describe('probe domain', () => {
  it('names carry the owner pid', () => {
    expect(probeOwnerPid(probeName(4711, 'a1b2c3'))).toBe(4711);
    expect(probeOwnerPid('vmforge-probe-x-1')).toBeNull();
    expect(probeOwnerPid('web1')).toBeNull();
  });

  it("has the build's CPU mode for its type, no NIC, the disk and the serial log", () => {
    const base = { name: 'vmforge-probe-1-ab', uuid: '11111111-2222-4333-8444-555555555555', diskPath: '/tmp/p/boot.img', serialLogPath: '/tmp/p/serial.log', ownerPid: 1 };
    const kvm = probeDomainXml({ ...base, domainType: 'kvm' });
    expect(kvm).toMatch(/^<domain type='kvm'>/);
    expect(kvm).toContain("<cpu mode='host-passthrough'/>");
    expect(kvm).not.toContain('<interface');
    expect(kvm).toContain("<source file='/tmp/p/boot.img'/>");
    expect(kvm).toContain("<log file='/tmp/p/serial.log' append='off'/>");
    const tcg = probeDomainXml({ ...base, domainType: 'qemu' });
    expect(tcg).toMatch(/^<domain type='qemu'>/);
    expect(tcg).not.toContain('<cpu');
  });
});
