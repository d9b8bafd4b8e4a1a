/**
 * Bundle manifest: the JSON that describes one compressed template root in the store, plus the pure helpers that
 * fill it in (os-release parsing, kernel discovery, ELF arch) and the `name[:version]` reference syntax.
 * No I/O and no clock here: `created` is passed in by the caller.
 */
import { z } from 'zod';
import { invalidInput } from '../errors.js';

export const COMPRESSIONS = ['zstd', 'gzip', 'xz'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** File name extension of a blob, after `.tar`. */
export const COMPRESSION_EXT: Record<Compression, string> = { zstd: 'zst', gzip: 'gz', xz: 'xz' };

export const OS_FAMILIES = ['debian', 'rhel', 'suse', 'arch', 'other'] as const;
export type OsFamily = (typeof OS_FAMILIES)[number];

/** The version alias that resolves to the newest bundle of a name; never stored as a real version. */
export const LATEST = 'latest';

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
// '+' is allowed in versions because distribution-style versions ('12+20240101') use it; it is path-safe.
const VERSION_RE = /^[a-z0-9][a-z0-9._+-]{0,62}$/;

export const bundleNameSchema = z
  .string()
  .regex(NAME_RE, 'must match [a-z0-9][a-z0-9._-]{0,62}')
  .refine((s) => !s.includes('..'), "must not contain '..'");

export const bundleVersionSchema = z
  .string()
  .regex(VERSION_RE, 'must match [a-z0-9][a-z0-9._+-]{0,62}')
  .refine((s) => !s.includes('..'), "must not contain '..'")
  .refine((s) => s !== LATEST, `'${LATEST}' is reserved for the newest version`);

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

export const kernelSchema = z.object({
  version: z.string().min(1),
  kernel: z.string().regex(/^\/boot\/[^/]+$/),
  initrd: z.string().regex(/^\/boot\/[^/]+$/).optional(),
});
export type KernelEntry = z.infer<typeof kernelSchema>;

export const bundleSourceSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('debootstrap'),
    /** bootstrapCacheKey() of the inputs that produced the bundle. */
    cacheKey: sha256Schema,
  }),
  /** `vmforge bundle create` of a root directory (possibly a live system's `/`). */
  z.object({ kind: z.literal('root'), path: z.string().min(1) }),
  /** `vmforge bundle import` of an archive made elsewhere; `file` is its base name. */
  z.object({ kind: z.literal('import'), file: z.string().min(1) }),
]);
export type BundleSource = z.infer<typeof bundleSourceSchema>;

export const BOOTLOADERS = ['grub2', 'grub-legacy', 'none'] as const;
export type Bootloader = (typeof BOOTLOADERS)[number];

export const manifestSchema = z
  .object({
    schemaVersion: z.literal(1),
    name: bundleNameSchema,
    version: bundleVersionSchema,
    created: z.string().datetime({ offset: true }),
    os: z.object({
      id: z.string(),
      versionId: z.string(),
      prettyName: z.string(),
      family: z.enum(OS_FAMILIES),
    }),
    /** uname-style machine name (x86_64, aarch64, ...), as libvirt spells it. */
    arch: z.string().min(1),
    /** Newest first. */
    kernels: z.array(kernelSchema),
    /** Sum of the sizes of the regular files in the archive (apparent size; hard links counted once). */
    unpackedBytes: z.number().int().nonnegative(),
    /** Archive entries of every type: files, directories, links, device nodes. */
    fileCount: z.number().int().nonnegative(),
    compressedBytes: z.number().int().nonnegative(),
    compression: z.enum(COMPRESSIONS),
    /** Of the compressed blob. */
    sha256: sha256Schema,
    /** GNU tar --exclude patterns the archive was made with. */
    excludes: z.array(z.string()),
    source: bundleSourceSchema.optional(),
    // Fields below were added after schemaVersion 1 shipped; they are optional so manifests written before them
    // stay valid (readers must not rely on their presence).
    /** Host name of the machine that made the bundle. */
    sourceHost: z.string().min(1).max(255).optional(),
    /** Bootloader installed in the root (vmforge installs its own on the VM disk either way). */
    bootloader: z.enum(BOOTLOADERS).optional(),
    /** Files archived as empty files instead of with their content (e.g. /etc/machine-id), as member names. */
    emptied: z.array(z.string()).optional(),
  })
  .strict();
export type Manifest = z.infer<typeof manifestSchema>;

export function parseManifest(json: unknown, what = 'manifest'): Manifest {
  const res = manifestSchema.safeParse(json);
  if (!res.success) {
    const issues = res.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw invalidInput(`${what} is not a valid bundle manifest: ${issues}`);
  }
  return res.data;
}

// ---------------------------------------------------------------------------------------------------------------
// os-release

/**
 * Parses os-release(5): KEY=value lines, values optionally quoted with shell-style single or double quotes
 * (backslash escapes inside double quotes and unquoted). Comments, blank and malformed lines are skipped.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    const value = unquoteShellValue(m[2] ?? '');
    if (value !== undefined) out[m[1] as string] = value;
  }
  return out;
}

function unquoteShellValue(s: string): string | undefined {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return undefined;
      out += s.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const d = s[i] as string;
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1] as string)) {
          out += s[i + 1];
          i += 2;
        } else {
          out += d;
          i++;
        }
      }
      if (!closed) return undefined;
    } else if (c === '\\' && i + 1 < s.length) {
      out += s[i + 1];
      i += 2;
    } else if (/\s/.test(c)) {
      // An unquoted blank ends the value; anything after it (a trailing comment) is not part of it.
      break;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const FAMILY_IDS: Record<Exclude<OsFamily, 'other'>, readonly string[]> = {
  debian: ['debian', 'ubuntu', 'devuan', 'raspbian', 'linuxmint', 'pop', 'kali'],
  rhel: ['rhel', 'fedora', 'centos', 'rocky', 'almalinux', 'ol', 'amzn', 'scientific'],
  suse: ['suse', 'opensuse', 'sles', 'sled', 'opensuse-leap', 'opensuse-tumbleweed'],
  arch: ['arch', 'archarm', 'manjaro', 'endeavouros'],
};

/** Family from ID, then from the ID_LIKE list in order (Ubuntu: ID_LIKE=debian; Rocky: ID_LIKE="rhel centos fedora"). */
export function osFamily(osRelease: Record<string, string>): OsFamily {
  const ids = [osRelease.ID ?? '', ...(osRelease.ID_LIKE ?? '').split(/\s+/)].map((s) => s.toLowerCase()).filter(Boolean);
  for (const id of ids) {
    for (const [family, members] of Object.entries(FAMILY_IDS) as [OsFamily, readonly string[]][]) {
      if (members.includes(id) || (family === 'suse' && id.startsWith('opensuse'))) return family;
    }
  }
  return 'other';
}

export function osInfo(osRelease: Record<string, string>): Manifest['os'] {
  const id = osRelease.ID ?? 'linux';
  return {
    id,
    versionId: osRelease.VERSION_ID ?? '',
    prettyName: osRelease.PRETTY_NAME ?? osRelease.NAME ?? id,
    family: osFamily(osRelease),
  };
}

/** What detectOs reads; each is the file's text, absent when the file is not in the root. */
export interface ReleaseFiles {
  osRelease?: string | undefined;
  redhatRelease?: string | undefined;
  debianVersion?: string | undefined;
  suseRelease?: string | undefined;
  /** /etc/arch-release exists (it is empty on Arch). */
  archRelease?: boolean | undefined;
}

/** Guest paths detectOs can use, in the order they are consulted. */
export const RELEASE_FILE_PATHS = {
  osRelease: ['/etc/os-release', '/usr/lib/os-release'],
  redhatRelease: ['/etc/redhat-release', '/etc/system-release'],
  debianVersion: ['/etc/debian_version'],
  suseRelease: ['/etc/SuSE-release'],
  archRelease: ['/etc/arch-release'],
} as const;

const REDHAT_IDS: readonly [RegExp, string][] = [
  [/^red hat enterprise linux/i, 'rhel'],
  [/^centos stream/i, 'centos'],
  [/^centos/i, 'centos'],
  [/^fedora/i, 'fedora'],
  [/^rocky/i, 'rocky'],
  [/^alma/i, 'almalinux'],
  [/^scientific/i, 'scientific'],
  [/^oracle/i, 'ol'],
  [/^amazon/i, 'amzn'],
];

/**
 * OS of a root: os-release first; without it (CentOS 6, Debian 7 and older), the distribution's own release
 * file. When os-release names no family we know, a redhat-release or debian_version beside it settles the family.
 */
export function detectOs(files: ReleaseFiles): Manifest['os'] {
  const rel = files.osRelease !== undefined ? parseOsRelease(files.osRelease) : {};
  if (rel.ID) {
    const info = osInfo(rel);
    if (info.family !== 'other') return info;
    const family = familyFromReleaseFiles(files);
    return family ? { ...info, family } : info;
  }
  const redhat = firstLine(files.redhatRelease);
  if (redhat) {
    const id = REDHAT_IDS.find(([re]) => re.test(redhat))?.[1] ?? 'rhel';
    return { id, versionId: /release\s+([0-9][0-9.]*)/i.exec(redhat)?.[1] ?? '', prettyName: redhat, family: 'rhel' };
  }
  const suse = firstLine(files.suseRelease);
  if (suse) {
    const version = /^VERSION\s*=\s*(\S+)/m.exec(files.suseRelease ?? '')?.[1] ?? '';
    return { id: /opensuse/i.test(suse) ? 'opensuse' : 'sles', versionId: version, prettyName: suse, family: 'suse' };
  }
  const debian = firstLine(files.debianVersion);
  if (debian) return { id: 'debian', versionId: debian, prettyName: `Debian GNU/Linux ${debian}`, family: 'debian' };
  if (files.archRelease) return { id: 'arch', versionId: '', prettyName: 'Arch Linux', family: 'arch' };
  return osInfo(rel);
}

function familyFromReleaseFiles(files: ReleaseFiles): OsFamily | undefined {
  if (firstLine(files.redhatRelease)) return 'rhel';
  if (firstLine(files.debianVersion)) return 'debian';
  if (firstLine(files.suseRelease)) return 'suse';
  if (files.archRelease) return 'arch';
  return undefined;
}

function firstLine(text: string | undefined): string | undefined {
  const line = text?.split('\n')[0]?.trim();
  return line ? line : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// bootloader

/** Paths whose presence tells GRUB 2 apart from GRUB legacy. */
export const BOOTLOADER_PROBE_PATHS = {
  grub2Config: ['/boot/grub/grub.cfg', '/boot/grub2/grub.cfg'],
  legacy: ['/boot/grub/menu.lst', '/boot/grub/grub.conf', '/boot/grub/stage2'],
  grub2Installed: [
    '/boot/grub/i386-pc',
    '/boot/grub2/i386-pc',
    '/boot/grub/x86_64-efi',
    '/boot/grub2/x86_64-efi',
    '/usr/lib/grub/i386-pc',
    '/usr/lib/grub/x86_64-efi',
    '/usr/sbin/grub-install',
    '/usr/sbin/grub2-install',
  ],
} as const;

export const ALL_BOOTLOADER_PROBE_PATHS: readonly string[] = Object.values(BOOTLOADER_PROBE_PATHS).flat();

/**
 * A grub.cfg means GRUB 2 (a system upgraded from legacy may keep an old menu.lst beside it); else legacy
 * files mean GRUB legacy; else GRUB 2's modules or installer mean GRUB 2 installed but not yet configured.
 */
export function detectBootloader(has: (guestPath: string) => boolean): Bootloader {
  if (BOOTLOADER_PROBE_PATHS.grub2Config.some(has)) return 'grub2';
  if (BOOTLOADER_PROBE_PATHS.legacy.some(has)) return 'grub-legacy';
  if (BOOTLOADER_PROBE_PATHS.grub2Installed.some(has)) return 'grub2';
  return 'none';
}

// ---------------------------------------------------------------------------------------------------------------
// kernels

/**
 * Pairs `vmlinuz-X` in /boot with its initramfs: `initrd.img-X` (Debian), `initramfs-X.img` (RHEL, Arch) or
 * `initrd-X` (SUSE). Rescue, kdump and fallback images are not boot candidates. Newest version first.
 */
export function findKernels(bootDirFileNames: readonly string[]): KernelEntry[] {
  const names = new Set(bootDirFileNames);
  const out: KernelEntry[] = [];
  for (const name of bootDirFileNames) {
    const m = /^vmlinuz-(.+)$/.exec(name);
    if (!m) continue;
    const version = m[1] as string;
    if (/rescue|\.old$|\.bak$|\.dpkg-/.test(version) || /^0-rescue/.test(version)) continue;
    const initrd = [`initrd.img-${version}`, `initramfs-${version}.img`, `initrd-${version}`].find((n) => names.has(n));
    out.push({ version, kernel: `/boot/${name}`, ...(initrd ? { initrd: `/boot/${initrd}` } : {}) });
  }
  return out.sort((a, b) => compareVersions(b.version, a.version));
}

/**
 * Natural order: digit runs compare as numbers, everything else as text ('6.1.0-10' > '6.1.0-9').
 * Used for kernels and to break ties between bundle versions.
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    if (nx && ny) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// architecture

/** uname-style machine name from the first 20 bytes of an ELF file, or undefined when it is not one we know. */
export function elfArch(header: Uint8Array): string | undefined {
  if (header.length < 20 || header[0] !== 0x7f || header[1] !== 0x45 || header[2] !== 0x4c || header[3] !== 0x46) return undefined;
  const is64 = header[4] === 2;
  const little = header[5] === 1;
  const machine = little ? (header[18] as number) | ((header[19] as number) << 8) : ((header[18] as number) << 8) | (header[19] as number);
  switch (machine) {
    case 0x3e:
      return 'x86_64';
    case 0x03:
      return 'i686';
    case 0xb7:
      return 'aarch64';
    case 0x28:
      return 'armv7l';
    case 0x15:
      return little ? 'ppc64le' : 'ppc64';
    case 0x16:
      return 's390x';
    case 0xf3:
      return is64 ? 'riscv64' : 'riscv32';
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// references

export interface BundleRef {
  name: string;
  /** A stored version, or LATEST. */
  version: string;
}

/** Parses `name[:version]`; the version defaults to `latest`. */
export function parseBundleRef(ref: string): BundleRef {
  const hint = `use NAME or NAME:VERSION, e.g. debian or debian:bookworm-1 (lowercase letters, digits, '.', '_', '-')`;
  const parts = ref.split(':');
  if (parts.length > 2) throw invalidInput(`bundle reference '${ref}' has more than one ':'`, hint);
  const [name = '', version = LATEST] = parts;
  const n = bundleNameSchema.safeParse(name);
  if (!n.success) throw invalidInput(`bundle name '${name}' ${n.error.issues[0]?.message ?? 'is invalid'}`, hint);
  if (version !== LATEST) {
    const v = bundleVersionSchema.safeParse(version);
    if (!v.success) throw invalidInput(`bundle version '${version}' ${v.error.issues[0]?.message ?? 'is invalid'}`, hint);
  }
  return { name, version };
}

export function formatBundleRef(ref: BundleRef): string {
  return `${ref.name}:${ref.version}`;
}

/** Checks a name and a concrete version (not `latest`) for a bundle about to be created. */
export function validateNewBundleId(name: string, version: string): void {
  const n = bundleNameSchema.safeParse(name);
  if (!n.success) throw invalidInput(`bundle name '${name}' ${n.error.issues[0]?.message ?? 'is invalid'}`);
  const v = bundleVersionSchema.safeParse(version);
  if (!v.success) throw invalidInput(`bundle version '${version}' ${v.error.issues[0]?.message ?? 'is invalid'}`);
}

/**
 * The bundle `latest` resolves to: the most recently created one; equal creation times are ordered by version.
 * Creation time rather than version order because versions are free-form ('bookworm-3f2a...' has no order).
 */
export function pickLatest<T extends Pick<Manifest, 'created' | 'version'>>(manifests: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const m of manifests) {
    if (!best) {
      best = m;
      continue;
    }
    const dt = Date.parse(m.created) - Date.parse(best.created);
    if (dt > 0 || (dt === 0 && compareVersions(m.version, best.version) > 0)) best = m;
  }
  return best;
}
