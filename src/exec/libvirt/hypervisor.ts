/**
 * Hypervisor: the libvirt operations vmforge needs, by domain name. VirshHypervisor runs `virsh -c URI`
 * through the CommandRunner. Removal operations are idempotent ("already gone" is success) because undo
 * and recovery re-run them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isUuid } from '../../core/disk/uuid.js';
import { notFound, VmforgeError } from '../../errors.js';
import { commandFailed, type CommandRunner, type RunResult } from '../runner.js';

/** What `virsh domstate` prints (LC_ALL=C). */
export type DomainState = 'running' | 'idle' | 'paused' | 'in shutdown' | 'shut off' | 'crashed' | 'pmsuspended' | 'no state';

const DOMAIN_STATES: readonly DomainState[] = ['running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended', 'no state'];

export interface Hypervisor {
  /**
   * Define (or redefine) a persistent domain from its XML; the XML is validated against libvirt's schema. With
   * `autostartUuid` (the UUID in the XML) the new domain is also marked to start with the host.
   */
  defineXml(xml: string, opts?: { autostartUuid?: string }): Promise<void>;
  /** Remove the definition, its NVRAM, managed-save image and snapshot metadata. Absent is success. */
  undefine(name: string): Promise<void>;
  start(name: string): Promise<void>;
  /** Hard power-off. Not running or absent is success. */
  destroy(name: string): Promise<void>;
  setAutostart(name: string, on: boolean): Promise<void>;
  getAutostart(name: string): Promise<boolean>;
  exists(name: string): Promise<boolean>;
  /** null when no such domain exists. */
  state(name: string): Promise<DomainState | null>;
  listAllNames(): Promise<string[]>;
  /**
   * listAllNames plus the names of libvirt's active networks, in one virsh start. The networks are [] when
   * libvirt could not list them (a driver without networks); a failure to list domains throws as listAllNames.
   */
  listAllNamesAndNetworks(): Promise<{ names: string[]; networks: string[] }>;
  /** The live XML of a running domain, or with `inactive` the persistent definition. */
  dumpXml(name: string, opts?: { inactive?: boolean }): Promise<string>;
  /**
   * The persistent definitions of `names`, as few virsh starts as it takes; a domain gone meanwhile is left out
   * (in no particular order: each XML names its domain).
   */
  inactiveXmls(names: readonly string[]): Promise<string[]>;
  /** Throws HYPERVISOR_UNREACHABLE when libvirt cannot be reached. */
  ping(): Promise<void>;
}

/** Domains per virsh start in inactiveXmls: keeps the command string far below any argv limit. */
const XMLS_PER_CALL = 100;

export interface VirshHypervisorOptions {
  /** Per-command limit; default 120 s (destroy of a wedged guest can take a while). */
  timeoutMs?: number;
  /** Where the XML for `virsh define` is written; default os.tmpdir(). */
  tmpDir?: string;
}

// virsh 9 prints only "failed to get domain 'x'" for a missing domain; older ones print libvirt's message.
const NOT_FOUND_RE = /failed to get domain|Domain not found|no domain with matching/i;
const NOT_RUNNING_RE = /domain is not running/i;
const UNREACHABLE_RE = /failed to connect to the hypervisor/i;
const UNSUPPORTED_FLAGS_RE = /unsupported flags/i;

export class VirshHypervisor implements Hypervisor {
  private readonly timeoutMs: number;
  private readonly tmpDir: string;

  constructor(
    private readonly runner: CommandRunner,
    readonly uri: string,
    opts: VirshHypervisorOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.tmpDir = opts.tmpDir ?? tmpdir();
  }

  async defineXml(xml: string, opts: { autostartUuid?: string } = {}): Promise<void> {
    const dir = await mkdtemp(join(this.tmpDir, 'vmforge-define-'));
    try {
      const file = join(dir, 'domain.xml');
      await writeFile(file, xml, { mode: 0o600 });
      if (opts.autostartUuid === undefined) {
        await this.virsh(['define', '--validate', '--file', file]);
        return;
      }
      // One virsh process and one connection for both (a virsh start-up costs ~80 ms). virsh parses the command
      // string itself (no shell) and runs both commands even when the first fails, so the autostart names the
      // domain by its fresh UUID: if the define failed, it cannot touch a same-named domain someone else has.
      const uuid = opts.autostartUuid;
      if (!isUuid(uuid)) throw new VmforgeError('INTERNAL', `not a UUID: ${JSON.stringify(uuid)}`);
      if (/['\\\s;]/.test(file)) {
        // A state dir whose path virsh's quoting cannot carry: two calls.
        await this.virsh(['define', '--validate', '--file', file]);
        await this.virsh(['autostart', '--domain', uuid]);
        return;
      }
      const res = await this.virsh([`define --validate --file '${file}' ; autostart --domain ${uuid}`]);
      // The exit status is the last command's: a failed define followed by nothing else is only on stderr.
      if (/^error:/m.test(res.stderr)) throw commandFailed(['virsh', 'define', '--validate', '--file', file], res.exitCode, res.stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async undefine(name: string): Promise<void> {
    const flags = ['--managed-save', '--snapshots-metadata', '--checkpoints-metadata'];
    try {
      try {
        await this.virsh(['undefine', ...flags, '--nvram', '--domain', name]);
      } catch (e) {
        // Drivers without NVRAM support (e.g. test:///) reject the flag instead of ignoring it.
        if (!(isCommandFailed(e) && UNSUPPORTED_FLAGS_RE.test(e.message))) throw e;
        await this.virsh(['undefine', ...flags, '--domain', name]);
      }
    } catch (e) {
      if (isCommandFailed(e) && NOT_FOUND_RE.test(e.message) && !(await this.exists(name))) return;
      throw e;
    }
  }

  async start(name: string): Promise<void> {
    await this.onDomain(name, ['start', '--domain', name]);
  }

  async destroy(name: string): Promise<void> {
    try {
      await this.virsh(['destroy', '--domain', name]);
    } catch (e) {
      if (isCommandFailed(e) && (NOT_FOUND_RE.test(e.message) || NOT_RUNNING_RE.test(e.message))) {
        const st = await this.state(name);
        if (st === null || st === 'shut off') return;
      }
      throw e;
    }
  }

  async setAutostart(name: string, on: boolean): Promise<void> {
    await this.onDomain(name, ['autostart', ...(on ? [] : ['--disable']), '--domain', name]);
  }

  async getAutostart(name: string): Promise<boolean> {
    const { stdout } = await this.onDomain(name, ['dominfo', '--domain', name]);
    const m = /^Autostart:\s*(\S+)/m.exec(stdout);
    if (!m) throw new VmforgeError('INTERNAL', `no Autostart line in virsh dominfo output for '${name}'`);
    return m[1] === 'enable';
  }

  async exists(name: string): Promise<boolean> {
    return (await this.listAllNames()).includes(name);
  }

  async state(name: string): Promise<DomainState | null> {
    let out: RunResult;
    try {
      out = await this.virsh(['domstate', '--domain', name]);
    } catch (e) {
      if (isCommandFailed(e) && NOT_FOUND_RE.test(e.message) && !(await this.exists(name))) return null;
      throw e;
    }
    const s = out.stdout.trim();
    if (!(DOMAIN_STATES as readonly string[]).includes(s)) {
      throw new VmforgeError('INTERNAL', `unexpected 'virsh domstate' output for '${name}': ${JSON.stringify(s)}`);
    }
    return s as DomainState;
  }

  async listAllNames(): Promise<string[]> {
    const { stdout } = await this.virsh(['list', '--all', '--name']);
    return nameLines(stdout);
  }

  async listAllNamesAndNetworks(): Promise<{ names: string[]; networks: string[] }> {
    // The domain list runs last, so virsh's exit status (the last command's) is its: a failed net-list alone
    // shows only on stderr and leaves its part of stdout empty.
    // The separator line carries a nonce: no network or domain can be named like it by chance.
    const separator = `vmforge-${randomBytes(8).toString('hex')}`;
    const res = await this.virsh([`net-list --name ; echo ${separator} ; list --all --name`]);
    // With --quiet, virsh's echo ends no line: the domain list starts right after the separator.
    const at = res.stdout.indexOf(separator);
    if (at < 0) throw new VmforgeError('INTERNAL', `no separator in virsh's answer to net-list + list: ${JSON.stringify(res.stdout.slice(0, 200))}`);
    return { networks: nameLines(res.stdout.slice(0, at)), names: nameLines(res.stdout.slice(at + separator.length)) };
  }

  async dumpXml(name: string, opts: { inactive?: boolean } = {}): Promise<string> {
    const { stdout } = await this.onDomain(name, ['dumpxml', ...(opts.inactive ? ['--inactive'] : []), '--domain', name]);
    return stdout;
  }

  async inactiveXmls(names: readonly string[]): Promise<string[]> {
    // A name virsh's single quotes cannot carry is asked for on its own.
    const batchable = names.filter((n) => !/['\\]/.test(n) && ![...n].some((ch) => ch.charCodeAt(0) < 0x20));
    const single = names.filter((n) => !batchable.includes(n));
    const out: string[] = [];
    for (let i = 0; i < batchable.length; i += XMLS_PER_CALL) {
      const cmd = batchable
        .slice(i, i + XMLS_PER_CALL)
        .map((n) => `dumpxml --inactive --domain '${n}'`)
        .join(' ; ');
      // virsh runs every command even when one fails (a domain undefined meanwhile): its error is on stderr,
      // its XML missing from stdout. The exit status is the last command's, so stderr is the test.
      const res = await this.virsh([cmd], { okCodes: [1] });
      const errors = res.stderr.split('\n').filter((l) => l.startsWith('error:') && !NOT_FOUND_RE.test(l));
      if (errors.length) throw commandFailed(['virsh', '--quiet', '-c', this.uri, cmd], res.exitCode, errors.join('\n'));
      out.push(...(res.stdout.match(/<domain[\s>][\s\S]*?<\/domain>/g) ?? []));
    }
    for (const n of single) {
      const xml = await this.dumpXml(n, { inactive: true }).catch((e: unknown) => {
        if (e instanceof VmforgeError && e.code === 'NOT_FOUND') return null;
        throw e;
      });
      if (xml) out.push(xml);
    }
    return out;
  }

  async ping(): Promise<void> {
    await this.virsh(['uri']);
  }

  /** Run a command on one domain, turning "no such domain" into NOT_FOUND. */
  private async onDomain(name: string, args: string[]): Promise<RunResult> {
    try {
      return await this.virsh(args);
    } catch (e) {
      if (isCommandFailed(e) && NOT_FOUND_RE.test(e.message) && !(await this.exists(name))) {
        throw notFound(`libvirt domain '${name}' does not exist (${this.uri})`, "list domains with 'virsh list --all'");
      }
      throw e;
    }
  }

  private async virsh(args: string[], opts: { okCodes?: number[] } = {}): Promise<RunResult> {
    try {
      // --quiet keeps informational lines ("Domain 'x' defined") out of stdout we parse.
      const res = await this.runner.run(['virsh', '--quiet', '-c', this.uri, ...args], { timeoutMs: this.timeoutMs, ...opts });
      // With okCodes a failure to connect comes back as a result: the same error as when it throws.
      if (res.exitCode !== 0 && UNREACHABLE_RE.test(res.stderr)) throw commandFailed(['virsh', ...args], res.exitCode, res.stderr);
      return res;
    } catch (e) {
      if (isCommandFailed(e) && UNREACHABLE_RE.test(e.message)) {
        const detail = e.message
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l.startsWith('error:') && !UNREACHABLE_RE.test(l))
          .map((l) => l.slice('error:'.length).trim())
          .join('; ');
        throw new VmforgeError('HYPERVISOR_UNREACHABLE', `cannot connect to libvirt at ${this.uri}${detail ? `: ${detail}` : ''}`, {
          hint: 'start libvirtd: `systemctl start libvirtd`, or on a host without systemd `virtlogd -d && libvirtd -d`',
          cause: e,
        });
      }
      throw e;
    }
  }
}

/** The names a `virsh ... --name` listing prints, one per line. */
function nameLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function isCommandFailed(e: unknown): e is VmforgeError {
  return e instanceof VmforgeError && e.code === 'COMMAND_FAILED';
}
