/**
 * Acceptance: bad input gets a clear error, a non-zero exit, and nothing left behind. Every case runs the
 * real CLI and then looks at the host from the outside: no disk or console file, loop device, mount, libvirt
 * domain, inventory row or pending undo record. A taken name must also leave the VM or domain that holds it
 * exactly as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import SQLite from 'better-sqlite3';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { EXIT_CODES, type ErrorCode } from '../../src/errors.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, uniqueName, type TestEnv } from '../harness/env.js';

/** Checked directly too: the unreachable env's own URI cannot show a domain that was made anyway. */
const SYSTEM_URI = 'qemu:///system';
/** Replaced by the template bundle's ref when a case runs (it is known only after beforeAll). */
const B = '@bundle';
/** Small and quick, for the one real build; no NIC (nothing attaches to a host bridge). */
const SMALL = ['--memory', '256M', '--disk', '1G', '--swap', '0', '--net', 'none'];

let bundle: string;
/** Cases run here, concurrently; none may create anything in it. */
let env: TestEnv;
/** Same, with a libvirt URI nobody listens on. */
let unreachable: TestEnv;
/** libvirt.domainType: kvm, on this host without /dev/kvm. */
let forcedKvm: TestEnv;
/** PATH with every host program but mkfs.ext4. */
let pathWithoutMkfs: string;

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv();
  unreachable = await makeTestEnv(`libvirt:\n  uri: 'qemu+unix:///system?socket=/nonexistent/sock'\n`);
  forcedKvm = await makeTestEnv('libvirt:\n  domainType: kvm\n');
  pathWithoutMkfs = await binDirWithout(join(env.dir, 'bin'), 'mkfs.ext4');
  await writeFile(join(env.dir, 'wrong-type.yaml'), `stateDir: ${env.dir}/bad-state\ndefaults:\n  cpus: two\n`);
  await writeFile(join(env.dir, 'unknown-field.yaml'), `stateDir: ${env.dir}/bad-state\nlibvirt:\n  uri: ${SYSTEM_URI}\n  colour: blue\n`);
  await writeFile(join(env.dir, 'typo.yaml'), `stateDri: ${env.dir}/bad-state\n`);
  await writeFile(join(env.dir, 'domain-type.yaml'), `stateDir: ${env.dir}/bad-state\nlibvirt:\n  domainType: kvmm\n`);
});

afterAll(async () => {
  await env?.cleanup();
  await unreachable?.cleanup();
  await forcedKvm?.cleanup();
});

/** A directory of symlinks to every program on the usual PATH except `missing`, plus node. */
async function binDirWithout(dir: string, missing: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const seen = new Set<string>([missing]);
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', dirname(process.execPath)]) {
    for (const f of await readdir(d).catch(() => [] as string[])) {
      if (seen.has(f)) continue;
      seen.add(f);
      await symlink(join(d, f), join(dir, f));
    }
  }
  if (!seen.has(basename(process.execPath))) await symlink(process.execPath, join(dir, basename(process.execPath)));
  return dir;
}

interface Case {
  title: string;
  /** The name leftovers() looks for. */
  name: string;
  /** Arguments after `vm build`; '@bundle' stands for the template's ref. */
  args: string[];
  code: ErrorCode;
  /** Matched against the error message: from 'error: ' up to the hint (config errors span lines). */
  error: RegExp;
  hint?: RegExp;
  on?: 'unreachable' | 'forcedKvm';
  cliEnv?: () => Record<string, string>;
}

const n = () => uniqueName('vmfbad');
const named = (title: string, name: string, error: RegExp, hint?: RegExp): Case => ({
  title: `name ${title}`,
  name,
  args: [name, '--bundle', B],
  code: 'INVALID_INPUT',
  error,
  ...(hint ? { hint } : {}),
});
const flags = (title: string, args: string[], code: ErrorCode, error: RegExp, hint?: RegExp): Case => {
  const name = n();
  return { title, name, args: [name, '--bundle', B, ...args], code, error, ...(hint ? { hint } : {}) };
};
const LABEL_HINT = /use only lower-case letters a-z, digits 0-9 and '-'/;
/** The same refusal from a real build and from its --dry-run: a dry run checks what the build checks. */
const both = (title: string, args: string[], code: ErrorCode, error: RegExp, hint?: RegExp): Case[] => [
  flags(title, args, code, error, hint),
  flags(`${title} (--dry-run)`, [...args, '--dry-run'], code, error, hint),
];

const cases: Case[] = [
  named('with shell metacharacters', 'a;rm -rf /', /VM name 'a;rm -rf \/' contains ';' \(a shell metacharacter\)/, LABEL_HINT),
  named('with a command substitution', '$(id)', /contains '\$' \(a shell metacharacter\), '\(' .*'\)'/, LABEL_HINT),
  named('with a slash', 'a/b', /'\/' \(a name must not be a path\)/, LABEL_HINT),
  named('of dots only', '..', /VM name '\.\.' contains '\.'/, LABEL_HINT),
  named('with a dot', 'web.example', /contains '\.' \(dots separate DNS labels; a name is one label\)/, /short host name only.*'web'/),
  named('in unicode', 'wéb', /VM name 'w\\u\{e9\}b' contains U\+00E9 \(not ASCII\)/, /internationalized names are not supported/),
  named('of 64 characters', 'a'.repeat(64), /VM name is 64 characters long; the limit is 63/, /shorter name/),
  { ...named('with a leading hyphen', '-web', /VM name '-web' starts with '-'/, /leading '-' reads as a command-line option/), args: ['--bundle', B, '--', '-web'] },
  { ...named('with a leading hyphen, without --', '-web', /unknown option '-web'/), args: ['-web', '--bundle', B] },
  named('in upper case', 'Web1', /VM name 'Web1' contains upper-case letters/, /use lower case: 'web1'/),
  named('empty', '', /VM name is empty/, LABEL_HINT),
  { title: 'no --bundle', name: 'vmfbad-nob', args: ['vmfbad-nob'], code: 'INVALID_INPUT', error: /required option '-b, --bundle <ref>' not specified/ },
  { title: 'unknown bundle', name: 'vmfbad-nosuch', args: ['vmfbad-nosuch', '--bundle', 'nosuch'], code: 'NOT_FOUND', error: /bundle nosuch:latest does not exist/, hint: /available: debian-bookworm:/ },
  { title: 'malformed bundle ref', name: 'vmfbad-ref', args: ['vmfbad-ref', '--bundle', '../x'], code: 'INVALID_INPUT', error: /bundle name '\.\.\/x' must match/, hint: /NAME:VERSION/ },
  flags('disk smaller than the bundle', ['--disk', '300M'], 'INSUFFICIENT_SPACE', /300 MiB disk .* leaves .* for the root filesystem; bundle debian-bookworm:\S+ unpacks to/, /use --disk \d+M or more/),
  flags('--disk 0', ['--disk', '0'], 'INVALID_INPUT', /--disk 0 is not a usable disk size/, /like 4G/),
  flags('negative --disk', ['--disk', '-5G'], 'INVALID_INPUT', /--disk: '-5G' is not a size/, /like 512M or 4G/),
  flags('--disk 100T', ['--disk', '100T'], 'INVALID_INPUT', /--disk 100T is larger than an MBR partition table can address \(2\.0 TiB\)/, /--disk 2T or less/),
  flags('--memory 1M', ['--memory', '1M'], 'INVALID_INPUT', /--memory 1M is below the 128M minimum/),
  flags('--cpus 0', ['--cpus', '0'], 'INVALID_INPUT', /--cpus '0' must be a whole number from 1 to 512/),
  flags('--cpus 1.5', ['--cpus', '1.5'], 'INVALID_INPUT', /--cpus '1\.5' must be a whole number from 1 to 512/),
  flags('swap not smaller than the disk', ['--swap', '5G', '--disk', '4G'], 'INVALID_INPUT', /--swap 5G is not smaller than the disk \(4G\)/, /swap smaller/),
  flags('--fs btrfs', ['--fs', 'btrfs'], 'INVALID_INPUT', /--fs 'btrfs' is not supported/, /use ext4 or xfs/),
  flags('octet out of range', ['--ip', '10.0.0.300/24'], 'INVALID_INPUT', /--ip: '10\.0\.0\.300' is not an IPv4 address/, /four numbers 0-255/),
  flags('--ip without a prefix', ['--ip', '10.0.0.5'], 'INVALID_INPUT', /--ip: '10\.0\.0\.5' needs a prefix length/, /ADDRESS\/PREFIX/),
  flags('gateway outside the subnet', ['--ip', '10.0.0.5/24', '--gateway', '10.0.1.1'], 'INVALID_INPUT', /--gateway 10\.0\.1\.1 is not inside 10\.0\.0\.5\/24/),
  flags('--gateway without --ip', ['--gateway', '10.0.0.1'], 'INVALID_INPUT', /--gateway and --dns need --ip/),
  flags('--net bogus', ['--net', 'bogus'], 'INVALID_INPUT', /--net 'bogus' is not understood/, /auto, user, none, bridge:NAME or network:NAME/),
  ...both('missing bridge', ['--bridge', 'nosuchbr0'], 'INVALID_INPUT', /bridge 'nosuchbr0' does not exist on this host/, /ip link add nosuchbr0 type bridge.*--no-start/),
  ...both('--hypervisor xen on a QEMU connection', ['--hypervisor', 'xen'], 'INVALID_INPUT', /^--hypervisor xen needs a Xen libvirt connection, but the URI is 'qemu:\/\/\/system' \(driver qemu\)$/, /--connect xen:\/\/\/system/),
  ...both('a remote libvirt URI', ['--connect', 'qemu+ssh://otherhost/system'], 'INVALID_INPUT', /^libvirt URI 'qemu\+ssh:\/\/otherhost\/system' names the host 'otherhost': vmforge builds only on this host's libvirt$/, /disks are made on this host/),
  ...both('unknown --timezone', ['--timezone', 'Europe/Nowhere'], 'INVALID_INPUT', /^time zone 'Europe\/Nowhere' is not a known zone$/, /timedatectl list-timezones/),
  ...both('--ip with --net none', ['--ip', '10.0.0.5/24', '--net', 'none'], 'INVALID_INPUT', /^--ip 10\.0\.0\.5\/24 needs a NIC, but --net none gives the VM none$/, /--bridge NAME, --net bridge:NAME or --network NAME/),
  ...both('--guest-family of another OS family', ['--guest-family', 'rhel9', ...SMALL], 'INVALID_INPUT', /^--guest-family rhel9 does not fit the bundle's OS \(Debian .*, debian family\)$/, /drop --guest-family to use the detected one, or give one for this OS: debian, ubuntu, systemd-networkd/),
  flags('--wait with --no-start', ['--wait', '--no-start'], 'INVALID_INPUT', /--wait needs the VM to start; drop --no-start/),
  { ...flags('missing mkfs.ext4', [], 'MISSING_TOOL', /required host program\(s\) not installed: mkfs\.ext4/, /apt-get install e2fsprogs/), cliEnv: () => ({ PATH: pathWithoutMkfs }) },
  { ...flags('libvirt not reachable', [], 'HYPERVISOR_UNREACHABLE', /cannot connect to libvirt at qemu\+unix:\/\/\/system\?socket=\/nonexistent\/sock/, /start libvirtd/), on: 'unreachable' },
  {
    ...flags('config field of the wrong type', [], 'INVALID_CONFIG', /wrong-type\.yaml is invalid:\n\s+defaults\.cpus: expected number, got string/, /fix the fields above/),
    cliEnv: () => ({ VMFORGE_CONFIG: join(env.dir, 'wrong-type.yaml') }),
  },
  {
    ...flags('unknown config field', [], 'INVALID_CONFIG', /unknown-field\.yaml is invalid:\n\s+libvirt: unknown field\(s\) 'colour'/, /fix the fields above/),
    cliEnv: () => ({ VMFORGE_CONFIG: join(env.dir, 'unknown-field.yaml') }),
  },
  {
    ...flags('unknown libvirt.domainType', [], 'INVALID_CONFIG', /domain-type\.yaml is invalid:\n\s+libvirt\.domainType: expected one of 'auto', 'kvm', 'qemu', got 'kvmm'/, /fix the fields above/),
    cliEnv: () => ({ VMFORGE_CONFIG: join(env.dir, 'domain-type.yaml') }),
  },
  // This machine kind has no /dev/kvm: a forced kvm is refused before any disk work, not at "Start the domain".
  {
    ...flags('libvirt.domainType kvm without /dev/kvm', [], 'INVALID_CONFIG', /^libvirt\.domainType is kvm, but a KVM guest cannot run on this host: no \/dev\/kvm on this host$/, /set libvirt\.domainType: auto \(or qemu\) to build with TCG emulation/),
    on: 'forcedKvm',
  },
  // Given with --config rather than through VMFORGE_CONFIG.
  flags('misspelt top-level config field', ['--config', '@typo'], 'INVALID_CONFIG', /typo\.yaml is invalid:\n\s+\(top level\): unknown field\(s\) 'stateDri'/, /fix the fields above/),
];

async function run(e: TestEnv, args: string[], cliEnv: Record<string, string> = {}) {
  const argv = args.map((a) => (a === B ? bundle : a === '@typo' ? join(env.dir, 'typo.yaml') : a));
  return e.cli(['vm', 'build', ...argv], { env: cliEnv, timeoutMs: 120_000 });
}

function errorAndHint(stderr: string): { error: string | undefined; hint: string | undefined } {
  const error = /^error: ([\s\S]*?)(?=^hint: |^\(run with --help|(?![\s\S]))/m.exec(stderr)?.[1]?.trimEnd();
  const hint = /^hint: (.*)$/m.exec(stderr)?.[1];
  return { error, hint };
}

/** Files a build would make under the state dir, and inventory rows, whatever their names. */
async function stateLeftovers(e: TestEnv): Promise<string[]> {
  const found: string[] = [];
  for (const d of [e.config.storage.dir, e.config.consoleDir, join(e.config.runDir, 'mnt')]) {
    for (const f of await readdir(d).catch(() => [] as string[])) found.push(join(d, f));
  }
  if (existsSync(e.config.dbPath)) {
    const db = new SQLite(e.config.dbPath, { readonly: true, fileMustExist: true });
    try {
      for (const r of db.prepare('select name from vms').all() as { name: string }[]) found.push(`inventory row ${r.name}`);
    } finally {
      db.close();
    }
  }
  return found;
}

async function systemDomainExists(name: string): Promise<boolean> {
  return (await execa('virsh', ['-q', '-c', SYSTEM_URI, 'dominfo', name], { reject: false })).exitCode === 0;
}

describe('bad input gets a clear error, a non-zero exit, and nothing left behind', () => {
  describe.concurrent('rejected', () => {
    it.for(cases)('$title', async (c, { expect }) => {
      const e = c.on === 'unreachable' ? unreachable : c.on === 'forcedKvm' ? forcedKvm : env;
      const r = await run(e, c.args, c.cliEnv?.());
      const shown = `stderr:\n${r.stderr}`;
      expect(r.stderr, shown).not.toMatch(/internal error|^\s+at /m);
      expect(r.exitCode, shown).toBe(EXIT_CODES[c.code]);
      const { error, hint } = errorAndHint(r.stderr);
      expect(error, shown).toMatch(c.error);
      if (c.hint) expect(hint, shown).toMatch(c.hint);
      // Nothing the user typed comes back as raw non-ASCII or control characters.
      expect(r.stderr).toMatch(/^[\x20-\x7e\n]*$/);
      expect(r.stdout).toBe('');
      expect(await leftovers(e, c.name)).toEqual([]);
      expect(await stateLeftovers(e)).toEqual([]);
      if (c.name) expect(await systemDomainExists(c.name)).toBe(false);
      expect(existsSync(join(env.dir, 'bad-state'))).toBe(false);
    });

    it('the minimum disk in the INSUFFICIENT_SPACE hint is the real minimum', async ({ expect }) => {
      const name = n();
      const r = await run(env, [name, '--bundle', B, '--disk', '300M', '--swap', '256M', '--dry-run']);
      expect(r.exitCode, r.stderr).toBe(EXIT_CODES.INSUFFICIENT_SPACE);
      const min = Number(/use --disk (\d+)M or more/.exec(r.stderr)?.[1]);
      expect(min).toBeGreaterThan(300);
      const ok = await run(env, [name, '--bundle', B, '--disk', `${min}M`, '--swap', '256M', '--dry-run']);
      expect(ok.exitCode, ok.stderr).toBe(0);
      const below = await run(env, [name, '--bundle', B, '--disk', `${min - 256}M`, '--swap', '256M', '--dry-run']);
      expect(below.exitCode, below.stderr).toBe(EXIT_CODES.INSUFFICIENT_SPACE);
    });

    it('--no-start --dry-run accepts a bridge that does not exist yet, as the build does, and says so', async ({ expect }) => {
      const name = n();
      const r = await run(env, [name, '--bundle', B, '--memory', '256M', '--disk', '1G', '--swap', '0', '--bridge', 'nosuchbr0', '--no-start', '--dry-run']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^ {2}note: {5}bridge nosuchbr0 does not exist yet \(needed at start\)$/m);
      expect(r.stdout).toContain("<source bridge='nosuchbr0'/>");
      expect(await leftovers(env, name)).toEqual([]);
    });

    it('--dry-run prints the plan and the domain XML and changes nothing', async ({ expect }) => {
      const name = n();
      const r = await run(env, [name, '--bundle', B, ...SMALL, '--dry-run']);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toContain(`Plan for VM ${name} (dry run: nothing was changed)`);
      expect(r.stdout).toContain(`${env.config.storage.dir}/${name}.img`);
      expect(r.stdout).toMatch(/^<domain type='(kvm|qemu)'>/m);
      // How the domain type was chosen; a dry run starts no probe guest and says what it went by.
      expect(r.stdout).toMatch(/^ {2}accel: {4}(qemu \(host facts: no \/dev\/kvm on this host\)|\S+ \((facts only, not probed yet|probe cached for this host boot|host facts): .+\))$/m);
      expect(r.stdout).toContain(`<name>${name}</name>`);
      expect(await leftovers(env, name)).toEqual([]);
      expect(await stateLeftovers(env)).toEqual([]);
      expect(existsSync(env.config.storage.dir)).toBe(false);
      expect(await systemDomainExists(name)).toBe(false);
    });
  });

  describe('a taken name', () => {
    it('in the inventory: rejected, and the VM that has it is untouched', async () => {
      const name = uniqueName('vmfbad-taken');
      const built = await run(env, [name, '--bundle', B, ...SMALL, '--no-start', '--no-autostart']);
      try {
        expect(built.exitCode, built.stderr).toBe(0);
        const disk = join(env.config.storage.dir, `${name}.img`);
        const before = { disk: await stat(disk), left: await leftovers(env, name), uuid: await domUuid(name) };
        expect(before.left).toEqual([`file ${disk}`, `libvirt domain ${name}`, `inventory row ${name}`]);

        for (const extra of [[], ['--dry-run']]) {
          const r = await run(env, [name, '--bundle', B, ...SMALL, '--disk', '2G', ...extra]);
          expect(r.exitCode, r.stderr).toBe(EXIT_CODES.CONFLICT);
          const { error, hint } = errorAndHint(r.stderr);
          expect(error).toBe(`a VM named '${name}' exists already`);
          expect(hint).toBe(`pick another name, or remove it with 'vmforge vm destroy ${name}'`);
          expect(r.stderr).not.toMatch(/internal error|undo/);
        }

        const after = await stat(disk);
        expect([after.ino, after.size, after.mtimeMs]).toEqual([before.disk.ino, before.disk.size, before.disk.mtimeMs]);
        expect(await leftovers(env, name)).toEqual(before.left);
        expect(await domUuid(name)).toBe(before.uuid);
        const show = await env.cli(['vm', 'show', name, '--json']);
        expect(show.exitCode, show.stderr).toBe(0);
        expect((JSON.parse(show.stdout) as { status: string }).status).toBe('defined');
      } finally {
        await env.cli(['vm', 'destroy', name]);
      }
      expect(await leftovers(env, name)).toEqual([]);
      expect(await stateLeftovers(env)).toEqual([]);
    });

    it('by a libvirt domain vmforge did not make: rejected, and the domain is untouched', async () => {
      const name = uniqueName('vmfbad-foreign');
      const xml = join(env.dir, `${name}.xml`);
      await writeFile(
        xml,
        `<domain type='qemu'><name>${name}</name><description>not vmforge</description><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>\n`,
      );
      await execa('virsh', ['-q', '-c', SYSTEM_URI, 'define', '--file', xml]);
      try {
        const before = await execa('virsh', ['-q', '-c', SYSTEM_URI, 'dumpxml', '--inactive', name]);
        for (const extra of [[], ['--dry-run']]) {
          const r = await run(env, [name, '--bundle', B, ...SMALL, ...extra]);
          expect(r.exitCode, r.stderr).toBe(EXIT_CODES.CONFLICT);
          const { error, hint } = errorAndHint(r.stderr);
          expect(error).toBe(`libvirt already has a domain named '${name}' (not made by vmforge)`);
          expect(hint).toBe(`pick another name, or remove it with 'virsh undefine ${name}'`);
        }
        const after = await execa('virsh', ['-q', '-c', SYSTEM_URI, 'dumpxml', '--inactive', name]);
        expect(after.stdout).toBe(before.stdout);
        expect(await leftovers(env, name)).toEqual([`libvirt domain ${name}`]);
        expect(await stateLeftovers(env)).toEqual([]);
      } finally {
        await execa('virsh', ['-q', '-c', SYSTEM_URI, 'undefine', name], { reject: false });
      }
      expect(await leftovers(env, name)).toEqual([]);
    });
  });
});

async function domUuid(name: string): Promise<string> {
  return (await execa('virsh', ['-q', '-c', SYSTEM_URI, 'domuuid', name])).stdout.trim();
}
