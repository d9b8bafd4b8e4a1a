/**
 * MAC addresses under the hypervisor's locally-administered prefix. Randomness is injected (bytes), so the
 * choice is pure and testable.
 */
import { invalidInput, VmforgeError } from '../../errors.js';

export const MAC_PREFIX = { qemu: '52:54:00', kvm: '52:54:00', xen: '00:16:3e' } as const;

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function normalizeMac(mac: string): string {
  const m = mac.trim().toLowerCase().replace(/-/g, ':');
  if (!MAC_RE.test(m)) throw invalidInput(`'${mac}' is not a MAC address`, 'write it as 52:54:00:12:34:56');
  if (parseInt(m.slice(0, 2), 16) & 1) throw invalidInput(`'${mac}' is a multicast MAC address`, 'the first octet must be even');
  return m;
}

/**
 * Validates a MAC given by the user: normalized (lower case, ':'), unicast, not all zeros, and under
 * `hypervisorPrefix` when one is given (like MAC_PREFIX.qemu). Returns the normalized MAC.
 */
export function validateMac(mac: string, hypervisorPrefix?: string): string {
  const m = normalizeMac(mac);
  if (m === '00:00:00:00:00:00') throw invalidInput(`'${mac}' is the all-zero MAC address`, 'give a real MAC, or leave it out to have one picked');
  if (hypervisorPrefix !== undefined && !m.startsWith(`${hypervisorPrefix.toLowerCase()}:`)) {
    throw invalidInput(`MAC ${m} is not under the hypervisor's prefix ${hypervisorPrefix}`, `use a MAC that starts with ${hypervisorPrefix}, or leave it out to have one picked`);
  }
  return m;
}

/**
 * Picks a MAC under `prefix` that is not in `taken`. `randomBytes(n)` supplies entropy; a few collisions are
 * retried, then the failure is reported (a 24-bit space this full means something else is wrong).
 */
export function pickMac(prefix: string, taken: Iterable<string>, randomBytes: (n: number) => Uint8Array): string {
  const used = new Set([...taken].map((m) => m.toLowerCase()));
  for (let i = 0; i < 64; i++) {
    const b = randomBytes(3);
    const mac = `${prefix}:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
    if (!used.has(mac)) return mac;
  }
  throw new VmforgeError('CONFLICT', `could not find a free MAC address under ${prefix} after 64 tries`);
}

export function formatUuid(bytes: Uint8Array): string {
  const b = Uint8Array.from(bytes.slice(0, 16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
