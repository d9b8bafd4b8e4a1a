/**
 * Kernel command lines the guest keeps for itself. vmforge boots the VM through its own GRUB and grub.cfg, but the
 * guest's tools build the next kernel's entry from these (update-grub from /etc/default/grub; grubby and
 * kernel-install from grub.conf, BLS entries, grubenv's kernelopts and /etc/kernel/cmdline), so a stale root=
 * here would make the first kernel update unbootable.
 */
import { VmforgeError } from '../../errors.js';
import { joinLines, lastAssignment, parseShellValue, setAssignment, splitLines } from './text.js';

/** Arguments vmforge owns; any earlier value of these keys is dropped. */
export const KERNEL_ARGS = ['console=tty0', 'console=ttyS0,115200n8', 'net.ifnames=0'];
const OWNED_KERNEL_KEYS = ['console', 'net.ifnames'];
/**
 * Describe the template's disk, which the VM does not have: dracut waits for a missing LV or resume device and
 * then drops to its emergency shell, and a btrfs rootflags=subvol=root makes mounting an ext4/xfs root fail.
 */
const STALE_DEVICE_KEYS = ['rootflags', 'rootfstype', 'rd.lvm.lv', 'rd.lvm.vg', 'rd_LVM_LV', 'rd_LVM_VG', 'rd.md.uuid', 'rd_MD_UUID', 'rd.luks.uuid', 'resume'];
const GRUB_TERMINAL = 'console serial';
const GRUB_SERIAL_COMMAND = 'serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1';

const keyOf = (token: string) => token.split('=')[0]!;

/**
 * Rewrites one argument list: root= (when present) becomes the VM's root filesystem, stale device arguments and
 * vmforge's own keys are dropped, and vmforge's arguments go at the end. Shell-style $variables stay.
 */
export function rewriteKernelArgs(args: string, rootUuid: string | undefined, dropStale: boolean): string {
  const drop = new Set([...OWNED_KERNEL_KEYS, ...(dropStale ? STALE_DEVICE_KEYS : [])]);
  const kept = args
    .split(/\s+/)
    .filter((t) => t !== '' && !drop.has(keyOf(t)))
    .map((t) => (keyOf(t) === 'root' && rootUuid !== undefined ? `root=UUID=${rootUuid}` : t));
  // $tuned_params and friends are expanded by GRUB; keep them last, as tuned expects.
  const vars = kept.filter((t) => t.startsWith('$'));
  return [...kept.filter((t) => !t.startsWith('$')), ...KERNEL_ARGS, ...vars].join(' ');
}

/** Debian's shipped file, trimmed to its settings; used when the template has no GRUB installed yet. */
export const GRUB_DEFAULTS_BASE = `# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
# For full documentation of the options in this file, see:
#   info -f grub -n 'Simple configuration'

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""
`;

/**
 * /etc/default/grub: the serial console and classic NIC names on the kernel command line and GRUB's menu on both
 * consoles. Only the last assignment of each variable is edited (the one the shell keeps); everything else stays.
 * `dropStale` also removes arguments naming the template's devices (RHEL's rd.lvm.lv= and resume=).
 */
export function grubDefaults(existing: string | null, opts: { dropStale?: boolean } = {}): string {
  const lines = splitLines(existing ?? GRUB_DEFAULTS_BASE);
  const cmdline = lastAssignment(lines, 'GRUB_CMDLINE_LINUX');
  if (cmdline === -1) {
    lines.push(`GRUB_CMDLINE_LINUX="${KERNEL_ARGS.join(' ')}"`);
  } else {
    const line = lines[cmdline]!;
    const eq = line.indexOf('=');
    const parsed = parseShellValue(line.slice(eq + 1));
    if (parsed === null) {
      throw new VmforgeError('INVALID_INPUT', `/etc/default/grub line ${cmdline + 1}: cannot parse GRUB_CMDLINE_LINUX`, {
        hint: "fix the template's /etc/default/grub (one quoted value on one line)",
      });
    }
    const quote = parsed.quote === "'" ? "'" : '"';
    lines[cmdline] = `${line.slice(0, eq + 1)}${quote}${rewriteKernelArgs(parsed.value, undefined, opts.dropStale ?? false)}${quote}${parsed.tail}`;
  }
  // Distributions put arguments here too (Arch: rootflags=); only the stale ones go, vmforge adds nothing.
  const defaults = lastAssignment(lines, 'GRUB_CMDLINE_LINUX_DEFAULT');
  if (opts.dropStale && defaults !== -1) {
    const line = lines[defaults]!;
    const eq = line.indexOf('=');
    const parsed = parseShellValue(line.slice(eq + 1));
    if (parsed !== null) {
      const kept = parsed.value.split(/\s+/).filter((t) => t !== '' && !STALE_DEVICE_KEYS.includes(keyOf(t)));
      const quote = parsed.quote === "'" ? "'" : '"';
      lines[defaults] = `${line.slice(0, eq + 1)}${quote}${kept.join(' ')}${quote}${parsed.tail}`;
    }
  }
  setAssignment(lines, 'GRUB_TERMINAL', `"${GRUB_TERMINAL}"`);
  setAssignment(lines, 'GRUB_SERIAL_COMMAND', `"${GRUB_SERIAL_COMMAND}"`);
  return joinLines(lines);
}

/**
 * Paths in a boot loader entry are relative to the filesystem holding /boot. The template may have had a /boot
 * partition; on a vmforge disk /boot is a directory of the root filesystem.
 */
function bootPath(p: string, separateBoot: boolean): string {
  return separateBoot && p.startsWith('/') && !p.startsWith('/boot/') ? `/boot${p}` : p;
}

/** GRUB legacy's grub.conf (RHEL/CentOS 6): kernel lines get the new root and vmforge's arguments. */
export function legacyGrubConf(text: string, rootUuid: string, separateBoot: boolean): string {
  return joinLines(
    splitLines(text).map((line) => {
      const m = /^(\s*)(kernel|initrd)(\s+)(\S+)(.*)$/.exec(line);
      if (m) {
        const [, indent, word, space, file, rest] = m as unknown as [string, string, string, string, string, string];
        const args = word === 'kernel' ? ` ${rewriteKernelArgs(rest, rootUuid, true)}` : rest;
        return `${indent}${word}${space}${bootPath(file, separateBoot)}${args}`;
      }
      const splash = /^(splashimage=\(hd\d+,\d+\))(\/.*)$/.exec(line);
      if (splash) return `${splash[1]}${bootPath(splash[2]!, separateBoot)}`;
      return line;
    }),
  );
}

/** A GRUB 2 grub.cfg the guest generated (RHEL/CentOS 7 /boot/grub2/grub.cfg): grubby copies its default entry. */
export function grub2Cfg(text: string, rootUuid: string, separateBoot: boolean): string {
  return joinLines(
    splitLines(text).map((line) => {
      const k = /^(\s*)(linux16|linux|linuxefi|initrd16|initrd|initrdefi)(\s+)(\S+)(.*)$/.exec(line);
      if (k) {
        const [, indent, word, space, file, rest] = k as unknown as [string, string, string, string, string, string];
        const args = word.startsWith('linux') ? ` ${rewriteKernelArgs(rest, rootUuid, true)}` : rest;
        return `${indent}${word}${space}${bootPath(file, separateBoot)}${args}`;
      }
      // The template's /boot or root filesystem UUID; GRUB would search for a filesystem the VM does not have.
      return line.replace(/^(\s*search\b.*\s--fs-uuid\s.*\s)[0-9a-fA-F-]{8,}\s*$/, `$1${rootUuid}`);
    }),
  );
}

/** One Boot Loader Specification entry (/boot/loader/entries/*.conf, RHEL 8+ and Fedora 30+). */
export function blsEntry(text: string, rootUuid: string, separateBoot: boolean): string {
  return joinLines(
    splitLines(text).map((line) => {
      const m = /^(linux|initrd|options)(\s+)(.*)$/.exec(line);
      if (!m) return line;
      const [, key, space, value] = m as unknown as [string, string, string, string];
      if (key === 'options') {
        // RHEL 8 puts '$kernelopts' here and the arguments in grubenv (rewritten there): only a literal list is.
        return value.split(/\s+/).includes('$kernelopts') ? line : `options${space}${rewriteKernelArgs(value, rootUuid, true)}`;
      }
      const [file, ...more] = value.split(/\s+/);
      return `${key}${space}${[bootPath(file!, separateBoot), ...more].join(' ')}`;
    }),
  );
}

/** grub-editenv's file is exactly this long, padded with '#'; GRUB refuses any other size. */
const GRUBENV_SIZE = 1024;

/** RHEL 8's grubenv: its kernelopts= is what every BLS entry's '$kernelopts' expands to. */
export function grubenvWithKernelopts(text: string, rootUuid: string): string {
  const body = text.replace(/#+$/, '');
  const lines = splitLines(body).map((line) => (line.startsWith('kernelopts=') ? `kernelopts=${rewriteKernelArgs(line.slice('kernelopts='.length), rootUuid, true)}` : line));
  const out = joinLines(lines);
  if (out.length > GRUBENV_SIZE) {
    throw new VmforgeError('INVALID_INPUT', `the guest's grubenv would grow past ${GRUBENV_SIZE} bytes with the new kernel arguments`, {
      hint: "shorten the template's kernelopts (grub2-editenv - set kernelopts=...)",
    });
  }
  return out + '#'.repeat(GRUBENV_SIZE - out.length);
}

/** /etc/kernel/cmdline: one line kernel-install copies into every new BLS entry. */
export function kernelCmdlineFile(text: string, rootUuid: string): string {
  return `${rewriteKernelArgs(text.replace(/\n/g, ' '), rootUuid, true)}\n`;
}
