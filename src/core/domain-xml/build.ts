/**
 * DomainModel -> libvirt domain XML. The model is validated first so a bad value fails here with a
 * VmforgeError naming the field, not later as an opaque `virsh define` error.
 */
import { VmforgeError } from '../../errors.js';
import type {
  BootConfig,
  ClockTimer,
  CpuConfig,
  DiskDevice,
  DomainModel,
  InterfaceDevice,
  SerialConsole,
} from './model.js';
import { el, serializeXml, textEl, type XmlElement } from './xml.js';

export function buildDomainXml(model: DomainModel): string {
  validateDomainModel(model);
  return serializeXml(domainElement(model));
}

export function domainElement(m: DomainModel): XmlElement {
  const xen = m.type === 'xen';
  return el(
    'domain',
    { type: m.type },
    textEl('name', m.name),
    textEl('uuid', m.uuid.toLowerCase()),
    m.description !== undefined && textEl('description', m.description),
    textEl('memory', m.memoryMiB, { unit: 'MiB' }),
    textEl('currentMemory', m.memoryMiB, { unit: 'MiB' }),
    textEl('vcpu', m.vcpus, { placement: 'static' }),
    // libvirt keeps the PV bootloader outside <os>: dom0 runs it before the guest exists.
    m.os.boot.kind === 'pygrub' && textEl('bootloader', m.os.boot.bootloader),
    m.os.boot.kind === 'pygrub' && m.os.boot.args !== undefined && textEl('bootloader_args', m.os.boot.args),
    el(
      'os',
      {},
      textEl('type', m.os.type, { arch: m.os.arch, machine: m.os.machine }),
      bootElements(m.os.boot),
    ),
    (m.features.acpi || m.features.apic || m.features.pae === true) &&
      el('features', {}, m.features.acpi && el('acpi'), m.features.apic && el('apic'), m.features.pae === true && el('pae')),
    m.cpu && cpuElement(m.cpu),
    el('clock', { offset: m.clock.offset }, m.clock.timers.map(timerElement)),
    textEl('on_poweroff', m.onPoweroff),
    textEl('on_reboot', m.onReboot),
    textEl('on_crash', m.onCrash),
    el(
      'devices',
      {},
      m.disks.map(diskElement),
      !m.usb && !xen && el('controller', { type: 'usb', model: 'none' }),
      m.interfaces.map(interfaceElement),
      m.serial && serialElements(m.serial, xen),
      m.xenConsole === true && el('console', { type: 'pty' }, el('target', { type: 'xen', port: 0 })),
      el('memballoon', { model: m.memballoon.model }),
      m.rng && el('rng', { model: m.rng.model }, textEl('backend', m.rng.backend, { model: 'random' })),
    ),
  );
}

function bootElements(boot: BootConfig): XmlElement[] {
  switch (boot.kind) {
    case 'disk':
      return [el('boot', { dev: boot.dev })];
    case 'kernel': {
      const out = boot.firmware
        ? [textEl('loader', boot.firmware.loader, { readonly: true, type: 'pflash' }), textEl('nvram', boot.firmware.nvram, { template: boot.firmware.nvramTemplate })]
        : [];
      out.push(textEl('kernel', boot.kernel));
      if (boot.initrd !== undefined) out.push(textEl('initrd', boot.initrd));
      if (boot.cmdline !== undefined) out.push(textEl('cmdline', boot.cmdline));
      return out;
    }
    case 'uefi':
      return [
        textEl('loader', boot.loader, { readonly: true, type: 'pflash' }),
        textEl('nvram', boot.nvram, { template: boot.nvramTemplate }),
        el('boot', { dev: 'hd' }),
      ];
    case 'pygrub':
      return [];
    case 'hvmloader':
      return [textEl('loader', boot.loader, { type: 'rom' }), el('boot', { dev: 'hd' })];
  }
}

function cpuElement(cpu: CpuConfig): XmlElement {
  switch (cpu.mode) {
    case 'host-passthrough':
    case 'host-model':
    case 'maximum':
      return el('cpu', { mode: cpu.mode });
    case 'custom':
      return el('cpu', { mode: 'custom', match: 'exact' }, textEl('model', cpu.model, { fallback: 'allow' }));
  }
}

function timerElement(t: ClockTimer): XmlElement {
  switch (t.name) {
    case 'rtc':
    case 'pit':
      return el('timer', { name: t.name, tickpolicy: t.tickpolicy });
    case 'hpet':
    case 'kvmclock':
      return el('timer', { name: t.name, present: t.present });
  }
}

function diskElement(d: DiskDevice): XmlElement {
  const type = d.sourceType ?? 'file';
  return el(
    'disk',
    { type, device: d.device ?? 'disk' },
    el('driver', { name: d.driver ?? 'qemu', type: d.format, cache: d.cache, discard: d.discard, io: d.io }),
    el('source', type === 'block' ? { dev: d.sourceFile } : { file: d.sourceFile }),
    el('target', { dev: d.target, bus: d.bus }),
    d.readonly === true && el('readonly'),
  );
}

function interfaceElement(i: InterfaceDevice): XmlElement {
  let source: XmlElement | null;
  switch (i.kind) {
    case 'bridge':
      source = el('source', { bridge: i.source });
      break;
    case 'network':
      source = el('source', { network: i.source });
      break;
    case 'user':
      source = null;
      break;
  }
  return el(
    'interface',
    { type: i.kind },
    el('mac', { address: i.mac.toLowerCase() }),
    source,
    i.kind === 'bridge' && i.script !== undefined && el('script', { path: i.script }),
    i.model !== undefined && el('model', { type: i.model }),
  );
}

function serialElements(s: SerialConsole, xen: boolean): XmlElement[] {
  const type = s.socketPath === undefined ? 'pty' : 'unix';
  const source = () => (s.socketPath === undefined ? null : el('source', { mode: 'bind', path: s.socketPath }));
  return [
    el(
      'serial',
      { type },
      source(),
      s.logFile !== undefined && el('log', { file: s.logFile, append: s.logAppend ? 'on' : 'off' }),
      // libxl has one kind of emulated serial port and takes no target type or model.
      xen ? el('target', { port: 0 }) : el('target', { type: 'isa-serial', port: 0 }, el('model', { name: 'isa-serial' })),
    ),
    // libvirt ties console port 0 of target type 'serial' to the first <serial>; same source, one device.
    el('console', { type }, source(), el('target', { type: 'serial', port: 0 })),
  ];
}

// ---------------------------------------------------------------------------------------------------

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAC_RE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;
const DISK_TARGET_RE = /^(?:vd|sd|hd|xvd)[a-z]{1,3}$/;
/** Xen can hand a guest a single partition with no table around it: xvda1, xvda2 (the classic PV layout). */
const XEN_PARTITION_TARGET_RE = /^xvd[a-z]{1,3}[1-9][0-9]?$/;
/** A hotplug script: a name in /etc/xen/scripts, or an absolute path. */
const SCRIPT_RE = /^(?:\/[^\0]+|[A-Za-z0-9._-]+)$/;
const MACHINE_RE = /^[A-Za-z0-9._-]+$/;
/** sun_path is 108 bytes including the terminating NUL. */
const MAX_UNIX_SOCKET_PATH_BYTES = 107;

function bad(field: string, problem: string, hint?: string): VmforgeError {
  return new VmforgeError('INVALID_INPUT', `domain ${field} ${problem}`, hint === undefined ? {} : { hint });
}

function requireAbsolutePath(field: string, p: string): void {
  if (!p.startsWith('/')) throw bad(field, `must be an absolute path, got ${JSON.stringify(p)}`);
  if (p.includes('\0')) throw bad(field, 'contains a NUL byte');
}

function requireCount(field: string, n: number, max: number): void {
  if (!Number.isInteger(n) || n < 1 || n > max) throw bad(field, `must be an integer from 1 to ${max}, got ${n}`);
}

export function validateDomainModel(m: DomainModel): void {
  const xen = m.type === 'xen';
  if (m.name.length === 0 || m.name.trim() !== m.name) {
    throw bad('name', `${JSON.stringify(m.name)} is empty or has surrounding whitespace`);
  }
  if (m.name.includes('/')) throw bad('name', `${JSON.stringify(m.name)} contains '/', which libvirt rejects`);
  if (!UUID_RE.test(m.uuid)) throw bad('uuid', `${JSON.stringify(m.uuid)} is not a UUID`);
  requireCount('memoryMiB', m.memoryMiB, 16 * 1024 * 1024);
  requireCount('vcpus', m.vcpus, 4096);
  if (!MACHINE_RE.test(m.os.machine)) throw bad('machine', `${JSON.stringify(m.os.machine)} is not a machine type name`);
  validateOs(m);
  if (m.cpu?.mode === 'custom' && !MACHINE_RE.test(m.cpu.model)) throw bad('cpu model', `${JSON.stringify(m.cpu.model)} is not a CPU model name`);

  const targets = new Set<string>();
  for (const d of m.disks) {
    requireAbsolutePath('disk source', d.sourceFile);
    const partitionTarget = XEN_PARTITION_TARGET_RE.test(d.target);
    if (!DISK_TARGET_RE.test(d.target) && !partitionTarget) throw bad('disk target', `${JSON.stringify(d.target)} is not a device name like 'vda'`);
    if (targets.has(d.target)) throw bad('disk target', `${d.target} is used twice`);
    targets.add(d.target);
    if (d.io === 'native' && d.cache !== 'none' && d.cache !== 'directsync') {
      throw bad('disk io', "'native' needs cache 'none' or 'directsync'", "use io 'threads' or set cache to 'none'");
    }
    if ((d.bus === 'xen') !== xen) {
      throw bad('disk bus', xen ? `'${d.bus}' is not a Xen disk bus` : `'xen' needs a Xen domain, not '${m.type}'`, xen ? "use bus 'xen' (xvdX)" : "use bus 'virtio' (vdX)");
    }
    // A partition target (xvda1) exists only on the xen bus; partitionTarget implies the xvd prefix.
    if (d.target.startsWith('xvd') !== (d.bus === 'xen')) {
      throw bad('disk target', `${d.target} does not match bus '${d.bus}'`, d.bus === 'xen' ? "Xen disks are named 'xvdX'" : "virtio disks are named 'vdX'");
    }
    if (d.device === 'cdrom') {
      if (d.bus !== 'sata' && d.bus !== 'scsi') throw bad('cdrom bus', `'${d.bus}' cannot carry a CD-ROM`, "use bus 'sata' (sdX)");
      if ((d.sourceType ?? 'file') !== 'file' || d.format !== 'raw' || d.readonly !== true) {
        throw bad('cdrom', `${d.target} must be a read-only raw image file`);
      }
    }
    if (d.bus === 'sata' || d.bus === 'scsi') {
      if (!d.target.startsWith('sd')) throw bad('disk target', `${d.target} does not match bus '${d.bus}'`, "SATA and SCSI disks are named 'sdX'");
    }
    if (d.driver === 'phy' && (d.sourceType !== 'block' || d.format !== 'raw')) {
      throw bad('disk driver', "'phy' takes a raw block device only", "use driver 'qemu' for image files");
    }
  }

  const macs = new Set<string>();
  for (const i of m.interfaces) {
    if (!MAC_RE.test(i.mac)) throw bad('MAC address', `${JSON.stringify(i.mac)} is not of the form 52:54:00:xx:xx:xx`);
    if (parseInt(i.mac.slice(0, 2), 16) & 1) throw bad('MAC address', `${i.mac} is a multicast address`, 'the first octet must be even');
    const mac = i.mac.toLowerCase();
    if (macs.has(mac)) throw bad('MAC address', `${mac} is used twice`);
    macs.add(mac);
    if (i.kind !== 'user' && i.source.trim() === '') throw bad(`${i.kind} source`, 'is empty');
    if (i.kind === 'user' && xen) throw bad('interface', "'user' networking is a QEMU feature; Xen has none", 'attach the NIC to a bridge or a libvirt network');
    if (i.kind === 'bridge' && i.script !== undefined && !SCRIPT_RE.test(i.script)) {
      throw bad('interface script', `${JSON.stringify(i.script)} is neither a script name nor an absolute path`);
    }
  }

  if (m.serial) {
    if (m.serial.logFile !== undefined) requireAbsolutePath('serial log', m.serial.logFile);
    if (xen && (m.serial.logFile !== undefined || m.serial.socketPath !== undefined)) {
      throw bad('serial', 'under Xen is a plain pty: libxl has no log file or socket for it');
    }
    const socket = m.serial.socketPath;
    if (socket !== undefined) requireAbsolutePath('serial socket', socket);
    const bytes = socket === undefined ? 0 : new TextEncoder().encode(socket).length;
    if (bytes > MAX_UNIX_SOCKET_PATH_BYTES) {
      throw bad('serial socket', `path is ${bytes} bytes; UNIX socket paths are limited to ${MAX_UNIX_SOCKET_PATH_BYTES}`, 'use a shorter state directory');
    }
  }
  if (m.xenConsole === true && !xen) throw bad('console', "of target type 'xen' needs a Xen domain");
  if ((m.memballoon.model === 'xen') !== xen && m.memballoon.model !== 'none') {
    throw bad('memballoon', `model '${m.memballoon.model}' does not fit a '${m.type}' domain`);
  }
  if (xen && m.rng) throw bad('rng', 'virtio-rng is not available under Xen');
}

/** The boot method must fit the domain and OS type: libvirt's own errors for these name neither. */
function validateOs(m: DomainModel): void {
  const xen = m.type === 'xen';
  const boot = m.os.boot;
  if (m.os.type === 'linux' && !xen) throw bad('os type', `'linux' (paravirtualized) needs a Xen domain, not '${m.type}'`);
  switch (boot.kind) {
    case 'disk':
      if (xen) throw bad('boot', "'disk' is the QEMU BIOS boot", m.os.type === 'linux' ? "use 'pygrub' or 'kernel' for a PV guest" : "use 'hvmloader' for Xen HVM");
      break;
    case 'kernel':
      requireAbsolutePath('kernel', boot.kernel);
      if (boot.initrd !== undefined) requireAbsolutePath('initrd', boot.initrd);
      if (boot.firmware !== undefined) {
        if (xen) throw bad('boot', 'UEFI firmware is modelled for QEMU only');
        requireAbsolutePath('UEFI loader', boot.firmware.loader);
        requireAbsolutePath('UEFI nvram', boot.firmware.nvram);
      }
      break;
    case 'uefi':
      if (xen) throw bad('boot', "'uefi' is modelled for QEMU only");
      requireAbsolutePath('UEFI loader', boot.loader);
      requireAbsolutePath('UEFI nvram', boot.nvram);
      if (boot.nvramTemplate !== undefined) requireAbsolutePath('UEFI nvram template', boot.nvramTemplate);
      break;
    case 'pygrub':
      if (!xen || m.os.type !== 'linux') throw bad('boot', "'pygrub' boots Xen PV guests (os type 'linux') only");
      requireAbsolutePath('bootloader', boot.bootloader);
      break;
    case 'hvmloader':
      if (!xen || m.os.type !== 'hvm') throw bad('boot', "'hvmloader' boots Xen HVM guests only");
      requireAbsolutePath('hvmloader', boot.loader);
      break;
  }
}
