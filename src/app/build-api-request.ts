/**
 * The build request as an HTTP client sends it (`POST /v1/vms`), and its one translation into the build use
 * case's input. Sizes are numbers in the units the VM's own view uses (`memoryMiB`, `diskBytes`, `swapBytes`),
 * so what a client sends and what `GET /v1/vms/{name}` answers read the same. Host paths (password and key
 * files) are not part of it: a client gives public keys as text.
 *
 * The schema checks shapes and bounds field by field (the API reports them with JSON pointers); the use case
 * then makes the checks that need config and host facts, with the messages the CLI prints. `fieldOfError`
 * names the request field such a message is about.
 */
import { z } from 'zod';
import { MBR_MAX_DISK_BYTES } from '../core/disk/layout.js';
import { GUEST_FAMILIES } from '../core/guest/families.js';
import { SELINUX_MODES } from '../core/guest/selinux.js';
import { specFromRequest, type BuildRequest } from '../core/plan/build-request.js';
import type { Config } from '../config/schema.js';
import { VmforgeError } from '../errors.js';
import { MiB } from '../core/units.js';
import { publicKeyLines, type BuildOptions } from './build.js';

const label = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'an RFC 1123 label: a-z, 0-9 and hyphens, at most 63, no hyphen at either end');

export const vmBuildRequestSchema = z
  .object({
    name: label.describe('VM name (also its hostname and libvirt domain name)'),
    bundle: z.string().min(1).max(200).describe('bundle NAME[:VERSION]; pulled from the configured repository when not in the local store'),
    cpus: z.number().int().min(1).max(512).optional().describe('virtual CPUs (default: config defaults.cpus)'),
    memoryMiB: z.number().int().min(128).max(4 * 1024 * 1024).optional().describe('memory in MiB (default: config defaults.memory)'),
    diskBytes: z.number().int().min(MiB).max(MBR_MAX_DISK_BYTES).optional().describe('disk size in bytes (default: config defaults.disk)'),
    swapBytes: z.number().int().min(0).max(MBR_MAX_DISK_BYTES).optional().describe('swap partition in bytes, 0 for none (default: config defaults.swap)'),
    fs: z.enum(['ext4', 'xfs']).optional(),
    network: label.optional().describe('vmforge network to lease address, MAC, gateway, DNS and bridge from'),
    ip: z.string().max(50).optional().describe('static address with prefix (10.20.0.5/24); with network: this address from the pool'),
    gateway: z.string().max(50).optional(),
    dns: z.array(z.string().max(50)).max(3).optional(),
    nic: z
      .string()
      .regex(/^(auto|user|none|bridge:[A-Za-z0-9_.-]{1,15}|network:[A-Za-z0-9_.-]{1,64})$/, 'auto, user, none, bridge:NAME or network:NAME')
      .optional()
      .describe('NIC attachment (default: config defaults.net)'),
    mac: z.string().regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'a MAC like 52:54:00:12:34:56').optional(),
    dnsForce: z.boolean().optional().describe('replace DNS records of this name that point elsewhere'),
    start: z.boolean().optional().describe('start the domain (default true)'),
    autostart: z.boolean().optional().describe('start the domain with the host (default true)'),
    wait: z.boolean().optional().describe('wait for the login prompt on the serial console (needs start)'),
    waitTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
    guestFamily: z.enum(GUEST_FAMILIES).optional(),
    selinux: z.enum(SELINUX_MODES).optional(),
    timezone: z.string().max(64).optional(),
    boot: z.enum(['grub', 'kernel']).optional(),
    hypervisor: z.enum(['kvm', 'xen']).optional(),
    xenMode: z.enum(['pv', 'hvm']).optional(),
    xenDisk: z.enum(['partitions', 'disk']).optional(),
    storage: z.string().regex(/^(file|lvm:[^/\s]+(\/[^/\s]+)?)$/, 'file, lvm:VG or lvm:VG/THINPOOL').optional(),
    firmware: z.enum(['bios', 'uefi']).optional(),
    clone: z.enum(['auto', 'qcow2', 'reflink', 'off']).optional().describe('disk from the golden image (default: config storage.clone)'),
    hostKeys: z.boolean().optional().describe('make the guest SSH host keys on the host (default true)'),
    cloudInit: z.boolean().optional().describe('attach a cloud-init NoCloud seed'),
    sshKeys: z.array(z.string().max(16 * 1024)).max(32).optional().describe("OpenSSH public key lines for root's authorized_keys"),
  })
  .strict();

export type VmBuildApiRequest = z.infer<typeof vmBuildRequestSchema>;

export type ApiBuildOptions = Omit<BuildOptions, 'emit' | 'signal' | 'jobId' | 'recovered' | 'libvirtLists'>;

/**
 * The API's build request as the build use case's request and options (the CLI makes the same from flags),
 * after the use case's checks of the request alone: what they refuse is refused before a job exists, with the
 * field it is about.
 */
export function buildInputFromApi(r: VmBuildApiRequest, config: Config): { request: BuildRequest; options: ApiBuildOptions } {
  const request: BuildRequest = {
    name: r.name,
    bundle: r.bundle,
    ...(r.cpus !== undefined ? { cpus: r.cpus } : {}),
    ...(r.memoryMiB !== undefined ? { memory: `${r.memoryMiB}M` } : {}),
    ...(r.diskBytes !== undefined ? { disk: String(r.diskBytes) } : {}),
    ...(r.swapBytes !== undefined ? { swap: String(r.swapBytes) } : {}),
    ...(r.fs ? { fs: r.fs } : {}),
    ...(r.network ? { network: r.network } : {}),
    ...(r.ip ? { ip: r.ip } : {}),
    ...(r.gateway ? { gateway: r.gateway } : {}),
    ...(r.dns ? { dns: r.dns } : {}),
    ...(r.nic ? { net: r.nic } : {}),
    ...(r.mac ? { mac: r.mac } : {}),
    force: Boolean(r.dnsForce),
    ...(r.start !== undefined ? { start: r.start } : {}),
    ...(r.autostart !== undefined ? { autostart: r.autostart } : {}),
    ...(r.guestFamily ? { guestFamily: r.guestFamily } : {}),
    ...(r.selinux ? { selinux: r.selinux } : {}),
    ...(r.timezone ? { timezone: r.timezone } : {}),
    ...(r.boot ? { boot: r.boot } : {}),
    ...(r.hypervisor ? { hypervisor: r.hypervisor } : {}),
    ...(r.xenMode ? { xenMode: r.xenMode } : {}),
    ...(r.xenDisk ? { xenDisk: r.xenDisk } : {}),
    ...(r.storage ? { storage: r.storage } : {}),
    ...(r.firmware ? { firmware: r.firmware } : {}),
    ...(r.hostKeys === false ? { hostKeys: false } : {}),
    ...(r.cloudInit ? { cloudInit: true } : {}),
  };
  const options: ApiBuildOptions = {
    wait: Boolean(r.wait),
    ...(r.waitTimeoutSeconds !== undefined ? { waitTimeoutSeconds: r.waitTimeoutSeconds } : {}),
    ...(r.clone ? { clone: r.clone } : {}),
    ...(r.sshKeys ? { sshKeys: r.sshKeys } : {}),
  };
  try {
    specFromRequest(request, config);
    if (r.sshKeys) publicKeyLines(r.sshKeys, 'sshKeys');
  } catch (e) {
    if (!(e instanceof VmforgeError) || e.code !== 'INVALID_INPUT') throw e;
    const field = fieldOfError(e.message);
    if (!field) throw e;
    throw new VmforgeError(e.code, e.message, { hint: e.hint, field, cause: e });
  }
  return { request, options };
}

/** The use case's messages name CLI flags; these are the request fields they stand for. */
const FLAG_FIELDS: Record<string, keyof VmBuildApiRequest> = {
  '--bundle': 'bundle',
  '--cpus': 'cpus',
  '--memory': 'memoryMiB',
  '--disk': 'diskBytes',
  '--swap': 'swapBytes',
  '--fs': 'fs',
  '--network': 'network',
  '--ip': 'ip',
  '--gateway': 'gateway',
  '--dns': 'dns',
  '--net': 'nic',
  '--bridge': 'nic',
  '--mac': 'mac',
  '--force': 'dnsForce',
  '--no-start': 'start',
  '--wait': 'wait',
  '--wait-timeout': 'waitTimeoutSeconds',
  '--guest-family': 'guestFamily',
  '--selinux': 'selinux',
  '--timezone': 'timezone',
  '--boot': 'boot',
  '--hypervisor': 'hypervisor',
  '--xen-mode': 'xenMode',
  '--xen-disk': 'xenDisk',
  '--storage': 'storage',
  '--firmware': 'firmware',
  '--clone': 'clone',
  '--cloud-init': 'cloudInit',
};

/** The request field an INVALID_INPUT message from the build is about (the first flag it names), or null. */
export function fieldOfError(message: string): keyof VmBuildApiRequest | null {
  for (const m of message.matchAll(/(--[a-z][a-z-]*)/g)) {
    const field = FLAG_FIELDS[m[1] as string];
    if (field) return field;
  }
  if (/^VM name\b/.test(message)) return 'name';
  if (/^sshKeys\[/.test(message)) return 'sshKeys';
  return null;
}
