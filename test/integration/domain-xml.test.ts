/**
 * Generated domain XML against real libvirt: schema validation (virt-xml-validate), the full lifecycle on
 * the in-memory test:///default driver, and define/autostart/undefine (never start) on qemu:///system.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDomainXml, domainModelFor, readDomainFacts } from '../../src/core/domain-xml/index.js';
import { VmforgeError } from '../../src/errors.js';
import { acceleratorVerdict } from '../../src/app/accelerator.js';
import { VirshHypervisor } from '../../src/exec/libvirt/hypervisor.js';
import { HostProcessRunner, type CommandRunner, type RunOptions, type RunResult } from '../../src/exec/runner.js';

const GOLDEN_DIR = join(import.meta.dirname, '../../src/core/domain-xml/__golden__');
const MARK = '__vmforge_replay_mark__';

/** Quote one argument for virsh's own command-line parser (used inside a ';'-joined command string). */
const virshQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * test:///default keeps its state per connection, and every virsh process is a new connection. This runner
 * gives a sequence of virsh calls one shared state: each call runs as ONE virsh process that replays every
 * earlier successful command, prints a marker, then runs the new one (`virsh -c URI 'a; b; echo M; c'`,
 * a single argv element, no shell). Output before the marker is dropped; the exit status is the last
 * command's. Files passed to `define` are copied, since the hypervisor deletes its temp file.
 */
class TestDriverSessionRunner implements CommandRunner {
  private readonly history: string[] = [];
  private n = 0;
  constructor(
    private readonly inner: CommandRunner,
    private readonly fileDir: string,
  ) {}

  async run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    const c = argv.indexOf('-c');
    if (argv[0] !== 'virsh' || c < 0 || argv[c + 1] !== 'test:///default') return this.inner.run(argv, opts);
    const rest = [...argv.slice(c + 2)];
    const f = rest.indexOf('--file');
    if (rest[0] === 'define' && f >= 0 && rest[f + 1]) {
      const copy = join(this.fileDir, `define-${this.n++}.xml`);
      await copyFile(rest[f + 1]!, copy);
      rest[f + 1] = copy;
    }
    const cmd = rest.map(virshQuote).join(' ');
    const script = [...this.history, `echo ${MARK}`, cmd].join('; ');
    const res = await this.inner.run([...argv.slice(0, c + 2), script], opts);
    this.history.push(cmd);
    // With --quiet, virsh's `echo` prints no newline of its own, so what follows the marker is the answer.
    const at = res.stdout.indexOf(MARK);
    return { ...res, stdout: at < 0 ? res.stdout : res.stdout.slice(at + MARK.length).replace(/^\n/, '') };
  }
}

const runner = new HostProcessRunner();
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmforge-domxml-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function goldenFiles(): Promise<string[]> {
  const names = (await readdir(GOLDEN_DIR)).filter((n) => n.endsWith('.xml')).sort();
  expect(names.length).toBeGreaterThanOrEqual(4);
  return names.map((n) => join(GOLDEN_DIR, n));
}

describe('virt-xml-validate', () => {
  it('accepts every golden domain XML', async () => {
    for (const file of await goldenFiles()) {
      const res = await runner.run(['virt-xml-validate', file, 'domain']);
      expect(res.stdout + res.stderr, basename(file)).toMatch(/validates/);
    }
  });
});

describe('VirshHypervisor on test:///default', () => {
  const session = () => new VirshHypervisor(new TestDriverSessionRunner(runner, work), 'test:///default');

  async function lifecycle(xml: string): Promise<void> {
    const facts = readDomainFacts(xml);
    const h = session();
    await h.ping();
    await h.defineXml(xml);
    expect(await h.exists(facts.name)).toBe(true);
    expect(await h.listAllNames()).toContain(facts.name);
    expect(await h.state(facts.name)).toBe('shut off');
    expect(readDomainFacts(await h.dumpXml(facts.name, { inactive: true }))).toEqual(facts);

    await h.start(facts.name);
    expect(await h.state(facts.name)).toBe('running');
    await h.setAutostart(facts.name, true);
    expect(await h.getAutostart(facts.name)).toBe(true);
    await h.setAutostart(facts.name, false);
    expect(await h.getAutostart(facts.name)).toBe(false);

    await h.destroy(facts.name);
    expect(await h.state(facts.name)).toBe('shut off');
    await h.destroy(facts.name); // not running: still success
    await h.undefine(facts.name);
    expect(await h.exists(facts.name)).toBe(false);
    expect(await h.state(facts.name)).toBeNull();
    await h.undefine(facts.name); // already gone: still success
    await h.destroy(facts.name);
    await expect(h.start(facts.name)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  }

  // One test per golden: the replaying session runner grows with every command, so a single loop over all
  // goldens (Xen and UEFI ones included) could outlast one test's timeout on a busy machine.
  for (const name of readdirSync(GOLDEN_DIR).filter((n) => n.endsWith('.xml')).sort()) {
    it(`defines, starts, queries, destroys and undefines golden ${name}`, async () => {
      await lifecycle(await readFile(join(GOLDEN_DIR, name), 'utf8'));
    });
  }

  it('handles a domain whose name and paths need escaping and quoting', async () => {
    const name = `-odd 'name' & <x> "y"`;
    const xml = buildDomainXml(
      domainModelFor({
        name,
        uuid: randomUUID(),
        hypervisor: 'qemu',
        cpus: 1,
        memoryMiB: 128,
        diskPath: "/srv/it's & <here>/disk.qcow2",
        diskFormat: 'qcow2',
        nic: { type: 'user' },
        mac: '52:54:00:01:02:03',
        serialSocketPath: '/run/vmforge/odd/serial.sock',
        serialLogPath: '/var/lib/vmforge/odd/serial "log"',
        kernelBoot: { kernel: '/boot/vmlinuz', cmdline: `console=ttyS0 x="a b" y='c'` },
      }),
    );
    await lifecycle(xml);
  });

  it('reports an unreachable hypervisor as HYPERVISOR_UNREACHABLE', async () => {
    const h = new VirshHypervisor(runner, `qemu+unix:///system?socket=${join(work, 'no-such.sock')}`);
    const err = await h.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmforgeError);
    expect((err as VmforgeError).code).toBe('HYPERVISOR_UNREACHABLE');
    await expect(h.listAllNamesAndNetworks()).rejects.toMatchObject({ code: 'HYPERVISOR_UNREACHABLE' });
  });

  it('lists domains and active networks in one virsh start', async () => {
    let starts = 0;
    const counting: CommandRunner = { run: (argv, o) => ((starts += argv[0] === 'virsh' ? 1 : 0), runner.run(argv, o)) };
    const h = new VirshHypervisor(counting, 'test:///default');
    // A fresh test:///default connection has the domain 'test' and the active network 'default'.
    expect(await h.listAllNamesAndNetworks()).toEqual({ names: ['test'], networks: ['default'] });
    expect(starts).toBe(1);
    expect(await h.listAllNames()).toEqual(['test']);
  });
});

describe('VirshHypervisor on qemu:///system (define only, never started)', () => {
  const h = new VirshHypervisor(runner, 'qemu:///system');
  const name = `vmforge-it-${process.pid}-${randomBytes(3).toString('hex')}`;
  let dir: string;

  beforeAll(async () => {
    dir = join(work, 'system');
    await mkdir(dir);
    try {
      await h.ping();
    } catch (e) {
      if (!(e instanceof VmforgeError && e.code === 'HYPERVISOR_UNREACHABLE')) throw e;
      // A host without systemd: start the daemons the way the error hint says, then wait for the socket.
      await runner.run(['virtlogd', '-d']);
      await runner.run(['libvirtd', '-d']);
      for (let i = 0; ; i++) {
        try {
          await h.ping();
          break;
        } catch (err) {
          if (i >= 60) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    }
  });

  afterAll(async () => {
    await h.destroy(name);
    await h.undefine(name);
  });

  it('defines, sets autostart, reads back and undefines a domain', async () => {
    const disk = join(dir, 'disk.raw');
    await writeFile(disk, Buffer.alloc(1024 * 1024));
    const xml = buildDomainXml(
      domainModelFor({
        name,
        uuid: randomUUID(),
        // The domain type a build would pick here (the probe runs only where the host facts allow KVM).
        hypervisor: (await acceleratorVerdict({ config: { stateDir: dir, libvirt: { uri: 'qemu:///system', domainType: 'auto' } }, runner })).domainType,
        cpus: 1,
        memoryMiB: 64,
        diskPath: disk,
        diskFormat: 'raw',
        nic: { type: 'none' },
        serialSocketPath: join(dir, 'serial.sock'),
        serialLogPath: join(dir, 'serial.log'),
      }),
    );

    await h.defineXml(xml);
    expect(await h.exists(name)).toBe(true);
    expect(await h.state(name)).toBe('shut off');
    await h.setAutostart(name, true);
    expect(await h.getAutostart(name)).toBe(true);
    const facts = readDomainFacts(await h.dumpXml(name, { inactive: true }));
    expect(facts.name).toBe(name);
    expect(facts.macs).toEqual([]);
    expect(facts.diskSources).toEqual([disk]);
    const live = await h.dumpXml(name);
    expect(live).toContain(`<log file='${join(dir, 'serial.log')}' append='off'/>`);

    await h.undefine(name);
    expect(await h.exists(name)).toBe(false);
    expect(await h.state(name)).toBeNull();
    expect(existsSync(`/etc/libvirt/qemu/autostart/${name}.xml`)).toBe(false);
    await h.undefine(name);
    await h.destroy(name);
    expect(existsSync(disk)).toBe(true); // undefine never touches disk images
  });

  it('reads many definitions with one virsh start, leaving out a missing domain; a quote-carrying name alone', async () => {
    const names = [`${name}-a`, `${name}-b`, `${name}-it's`];
    try {
      for (const n of names) {
        await h.defineXml(
          buildDomainXml(
            domainModelFor({
              name: n,
              uuid: randomUUID(),
              hypervisor: 'qemu',
              cpus: 1,
              memoryMiB: 64,
              diskPath: join(dir, 'disk.raw'),
              diskFormat: 'raw',
              nic: { type: 'user' },
              mac: `52:54:00:aa:bb:0${names.indexOf(n)}`,
              serialSocketPath: join(dir, 'serial.sock'),
              serialLogPath: join(dir, 'serial.log'),
            }),
          ),
        );
      }
      let virshStarts = 0;
      const counting: CommandRunner = { run: (argv, o) => ((virshStarts += argv[0] === 'virsh' ? 1 : 0), runner.run(argv, o)) };
      const xmls = await new VirshHypervisor(counting, 'qemu:///system').inactiveXmls([names[0]!, `${name}-missing`, names[1]!, names[2]!]);
      // One for the three plain names (the missing one among them), one for the name with a quote.
      expect(virshStarts).toBe(2);
      const facts = xmls.map(readDomainFacts);
      expect(facts.map((f) => f.name).sort()).toEqual([...names].sort());
      expect(facts.flatMap((f) => f.macs).sort()).toEqual(['52:54:00:aa:bb:00', '52:54:00:aa:bb:01', '52:54:00:aa:bb:02']);
      expect(await h.inactiveXmls([])).toEqual([]);
      const down = new VirshHypervisor(runner, `qemu+unix:///system?socket=${join(work, 'no-such.sock')}`);
      await expect(down.inactiveXmls(names)).rejects.toMatchObject({ code: 'HYPERVISOR_UNREACHABLE' });
    } finally {
      for (const n of names) await h.undefine(n);
    }
  });

  it('defines with autostart in one virsh call, and a failed define never marks a same-named domain', async () => {
    const xmlWith = (uuid: string) =>
      buildDomainXml(
        domainModelFor({
          name,
          uuid,
          hypervisor: 'qemu',
          cpus: 1,
          memoryMiB: 64,
          diskPath: join(dir, 'disk.raw'),
          diskFormat: 'raw',
          nic: { type: 'none' },
          serialSocketPath: join(dir, 'serial.sock'),
          serialLogPath: join(dir, 'serial.log'),
        }),
      );
    const ours = randomUUID();
    await h.defineXml(xmlWith(ours), { autostartUuid: ours });
    expect(await h.getAutostart(name)).toBe(true);
    await h.setAutostart(name, false);

    // The name is now held by "someone else's" domain: defining ours under a new UUID fails, and the
    // autostart in the same virsh call (by our UUID) must not reach theirs.
    const err = await h.defineXml(xmlWith(randomUUID()), { autostartUuid: randomUUID() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmforgeError);
    expect((err as VmforgeError).message).toMatch(/already exists with uuid/);
    expect(await h.getAutostart(name)).toBe(false);
    await h.undefine(name);
    expect(existsSync(`/etc/libvirt/qemu/autostart/${name}.xml`)).toBe(false);
  });
});
