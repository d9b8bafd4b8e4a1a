/** What a libvirt connection URI says about where and which hypervisor vmforge would talk to. */
import { invalidInput } from '../errors.js';

export interface LibvirtUriFacts {
  /** 'qemu', 'xen', 'test', ... (the part before any '+transport'). */
  driver: string;
  /** 'unix', 'ssh', 'tcp', 'tls', ... or null when none is named. */
  transport: string | null;
  /** The host part ('' for the local daemon). */
  host: string;
}

/** Transports that reach a daemon on another machine (libvirt's remote driver); 'unix' stays on this host. */
const REMOTE_TRANSPORTS = new Set(['ssh', 'libssh', 'libssh2', 'tcp', 'tls', 'ext']);

export function readLibvirtUri(uri: string): LibvirtUriFacts {
  const m = /^([a-z][a-z0-9]*)(?:\+([a-z0-9]+))?:\/\/([^/?]*)/i.exec(uri);
  if (!m) throw invalidInput(`libvirt URI '${uri}' is not understood`, 'give it like qemu:///system or xen:///system');
  // user@host:port: only whether a host is named matters here.
  const authority = (m[3] as string).replace(/^[^@]*@/, '');
  return { driver: (m[1] as string).toLowerCase(), transport: m[2] ? m[2].toLowerCase() : null, host: authority.replace(/:\d*$/, '') };
}

/**
 * A build makes its disks on this host's storage and takes the domain type from this host, so the domain must be
 * defined on this host's libvirt: a remote URI would define it where its disks do not exist.
 */
export function requireLocalUri(uri: string): LibvirtUriFacts {
  const facts = readLibvirtUri(uri);
  const remote = facts.host !== '' ? `names the host '${facts.host}'` : facts.transport && REMOTE_TRANSPORTS.has(facts.transport) ? `uses the remote transport '+${facts.transport}'` : null;
  if (remote) {
    throw invalidInput(
      `libvirt URI '${uri}' ${remote}: vmforge builds only on this host's libvirt`,
      'the disks are made on this host, so the domain must be defined here: run vmforge on the other host itself, or use a local URI like qemu:///system',
    );
  }
  return facts;
}

/** Drivers that can define a Xen domain: Xen itself, and libvirt's test driver (which accepts any domain type). */
const XEN_DRIVERS = new Set(['xen', 'test']);

export function requireUriFitsHypervisor(uri: string, hypervisor: 'kvm' | 'xen'): void {
  const { driver } = readLibvirtUri(uri);
  if (hypervisor === 'xen' && !XEN_DRIVERS.has(driver)) {
    throw invalidInput(`--hypervisor xen needs a Xen libvirt connection, but the URI is '${uri}' (driver ${driver})`, "give --connect xen:///system on a Xen host, or drop --hypervisor xen to build a KVM/QEMU guest");
  }
}
