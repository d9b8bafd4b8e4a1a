/**
 * A private BIND 9 for DNS tests: `named -g` as a child process on 127.0.0.1 and a free high port, in its own
 * temp dir (named.conf, zone files, journals), with a TSIG key from `tsig-keygen -a hmac-sha256`. Zones in
 * `zones` accept updates signed with that key; zones in `lockedZones` are served but refuse every update.
 * No rndc, no recursion, no IPv6 listener. stop() kills it and removes the dir.
 */
import { execa, type Options, type ResultPromise } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';

export interface Bind9 {
  dir: string;
  server: { host: string; port: number };
  /** BIND key file with the key the zones accept. */
  keyFile: string;
  keyName: string;
  /** The key's secret (to check that it never leaks). */
  secret: string;
  /** `dig @server -p port +short ARGS...` (unsigned), trimmed lines. */
  dig(...args: string[]): Promise<string[]>;
  /** Runs an nsupdate script (server line added) signed with the key. */
  nsupdate(lines: string[]): Promise<void>;
  /** named's own log so far (for failure messages). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface Bind9Options {
  zones: string[];
  lockedZones?: string[];
  keyName?: string;
  /** Temp dir prefix; default $VMFORGE_BIND9_TMP_PREFIX or /var/tmp/vmforge-bind9- */
  tmpPrefix?: string;
  /** Runs named, dig and nsupdate under this prefix, e.g. ['ip', 'netns', 'exec', NS] for a namespace's loopback. */
  wrap?: string[];
}

export async function startBind9(opts: Bind9Options): Promise<Bind9> {
  const dir = await mkdtemp(opts.tmpPrefix ?? process.env.VMFORGE_BIND9_TMP_PREFIX ?? '/var/tmp/vmforge-bind9-');
  const keyName = opts.keyName ?? 'vmforge-test-key';
  const wrap = opts.wrap ?? [];
  const cmd: Cmd = (file, args, o) => (wrap.length ? execa(wrap[0] as string, [...wrap.slice(1), file, ...args], o ?? {}) : execa(file, args, o ?? {}));
  let child: ResultPromise | null = null;
  const logFile = join(dir, 'named.log');
  try {
    const keyText = (await execa('tsig-keygen', ['-a', 'hmac-sha256', keyName])).stdout;
    const secret = /secret "([^"]+)"/.exec(keyText)?.[1];
    if (!secret) throw new Error(`tsig-keygen printed no secret`);
    const keyFile = join(dir, 'update.key');
    await writeFile(keyFile, `${keyText}\n`, { mode: 0o600 });
    const zoneConf: string[] = [];
    const all = [...opts.zones.map((z) => ({ z, locked: false })), ...(opts.lockedZones ?? []).map((z) => ({ z, locked: true }))];
    for (const [i, { z, locked }] of all.entries()) {
      const file = `zone${i}.db`;
      await writeFile(join(dir, file), `$TTL 300\n@ IN SOA ns.${z}. hostmaster.${z}. 1 3600 600 86400 300\n@ IN NS ns.${z}.\nns IN A 127.0.0.1\n`);
      const policy = locked ? 'allow-update { none; };' : `update-policy { grant ${keyName} zonesub ANY; };`;
      zoneConf.push(`zone "${z}" { type primary; file "${file}"; ${policy} };`);
    }
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      await writeFile(
        join(dir, 'named.conf'),
        [
          `include "${keyFile}";`,
          `options { directory "${dir}"; listen-on port ${port} { 127.0.0.1; }; listen-on-v6 { none; }; pid-file "${dir}/named.pid";`,
          `  recursion no; dnssec-validation no; notify no; };`,
          'controls { };',
          ...zoneConf,
          '',
        ].join('\n'),
      );
      // -g: foreground, log to stderr; -n 1: one worker (the test machine is small); no -u: the dir is root's.
      child = cmd('named', ['-g', '-n', '1', '-c', join(dir, 'named.conf')], { reject: false, stdout: { file: logFile }, stderr: { file: logFile } });
      const up = await waitUp(child, port, all.map((a) => a.z), logFile, cmd);
      if (up) {
        const server = { host: '127.0.0.1', port };
        const c = child;
        return {
          dir,
          server,
          keyFile,
          keyName,
          secret,
          async dig(...args) {
            const r = await cmd('dig', [`@${server.host}`, '-p', String(port), '+short', '+norec', '+time=2', '+tries=2', ...args]);
            return String(r.stdout).split('\n').map((l: string) => l.trim()).filter(Boolean);
          },
          async nsupdate(lines) {
            await cmd('nsupdate', ['-v', '-t', '5', '-k', keyFile], { input: [`server ${server.host} ${port}`, ...lines, ''].join('\n') });
          },
          log: () => readFile(logFile, 'utf8').catch(() => ''),
          async stop() {
            c.kill('SIGTERM');
            const t = setTimeout(() => c.kill('SIGKILL'), 5000);
            await c;
            clearTimeout(t);
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      child.kill('SIGKILL');
      await child;
      child = null;
      if (attempt >= 2) throw new Error(`named did not come up:\n${(await readFile(logFile, 'utf8').catch(() => '')).slice(-3000)}`);
    }
  } catch (e) {
    if (child) {
      child.kill('SIGKILL');
      await child;
    }
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** True once every zone answers its SOA; false when named exits (port taken); throws on a zone that failed. */
type Cmd = (file: string, args: string[], opts?: Options) => ResultPromise;

async function waitUp(child: ResultPromise, port: number, zones: string[], logFile: string, cmd: Cmd): Promise<boolean> {
  let exited = false;
  void child.finally(() => (exited = true));
  for (let i = 0; i < 75 && !exited; i++) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    if (/not loaded due to errors/.test(log)) throw new Error(`named could not load a zone:\n${log.slice(-3000)}`);
    let all = true;
    for (const zone of zones) {
      const r = await cmd('dig', ['@127.0.0.1', '-p', String(port), '+short', '+norec', '+time=1', '+tries=1', 'SOA', zone], { reject: false });
      if (r.exitCode !== 0 || !String(r.stdout).trim()) {
        all = false;
        break;
      }
    }
    if (all) return true;
    await new Promise((res) => setTimeout(res, 200));
  }
  return false;
}

/** A port free for both TCP and UDP on 127.0.0.1 right now (named binds both). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
}
