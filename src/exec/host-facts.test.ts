import { describe, expect, it } from 'vitest';
import { detectDomainType } from './host-facts.js';

describe('detectDomainType', () => {
  it("is 'kvm' for a read-write character device and 'qemu' otherwise", async () => {
    expect(await detectDomainType({ kvmDevice: '/dev/null' })).toBe('kvm');
    expect(await detectDomainType({ kvmDevice: '/etc/hostname' })).toBe('qemu');
    expect(await detectDomainType({ kvmDevice: '/nonexistent/kvm' })).toBe('qemu');
  });
});
