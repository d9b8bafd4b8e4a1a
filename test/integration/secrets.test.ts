/**
 * Secrets never reach output or logs. Runs the real CLI with a root password file (`vm build`, dry run and a
 * real build), repository tokens (repository.tokenFile, VMFORGE_REPO_TOKEN, a wrong token, a token in the URL's
 * user info) against a real `repo serve` on 127.0.0.1 whose own tokens come from the config, then searches every
 * byte the commands printed (stdout, stderr, --json lines), the server's request log, and every file under the
 * state dirs' log/ for each secret string.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, REPO, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';

requireRoot();

const rand = () => randomBytes(9).toString('hex');
/** Distinctive strings: any occurrence anywhere is a leak. */
const SECRETS = {
  rootPassword: `vmf-h7-rootpw-${rand()}`,
  repoToken: `vmf-h7-token-${rand()}`,
  envToken: `vmf-h7-envtoken-${rand()}`,
  wrongToken: `vmf-h7-wrongtoken-${rand()}`,
  urlPassword: `vmf-h7-urlpw-${rand()}`,
};

let env: TestEnv;
let bundle: string;
let server: ReturnType<typeof execa> | undefined;
let serverOut = '';
let repoUrl = '';
/** Everything the commands printed, labelled. */
const seen: { what: string; text: string }[] = [];

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv(
    [
      'repository:',
      `  tokenFile: /var/tmp/vmf-h7-secrets-${process.pid}-client.token`,
      'repoServer:',
      '  tokens:',
      '    - name: ci-reader',
      `      tokenFile: /var/tmp/vmf-h7-secrets-${process.pid}-server.token`,
      '      scopes: [read]',
      '',
    ].join('\n'),
  );
  await writeFile(`/var/tmp/vmf-h7-secrets-${process.pid}-client.token`, `${SECRETS.repoToken}\n`, { mode: 0o600 });
  await writeFile(`/var/tmp/vmf-h7-secrets-${process.pid}-server.token`, `${SECRETS.repoToken}\n`, { mode: 0o600 });
  await writeFile(join(env.dir, 'root.pw'), `${SECRETS.rootPassword}\n`, { mode: 0o600 });

  server = execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'repo', 'serve', '--listen', '127.0.0.1:0', '--data', join(env.dir, 'repo-data')], {
    cwd: REPO,
    env: { VMFORGE_CONFIG: env.configPath },
    reject: false,
    all: true,
  });
  repoUrl = await new Promise<string>((resolve, reject) => {
    server?.all?.on('data', (d: Buffer) => {
      serverOut += d.toString();
      const m = /serving \S+ at (http:\/\/127\.0\.0\.1:\d+)/.exec(serverOut);
      if (m) resolve(m[1] as string);
    });
    void server?.then(() => reject(new Error(`repo serve exited: ${serverOut}`)));
  });
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await server;
  }
  for (const f of ['client', 'server']) await execa('rm', ['-f', `/var/tmp/vmf-h7-secrets-${process.pid}-${f}.token`]);
  await env?.cleanup();
});

async function cli(what: string, args: string[], extraEnv: Record<string, string> = {}) {
  const r = await env.cli(args, { env: extraEnv, timeoutMs: 600_000 });
  seen.push({ what: `${what} stdout`, text: r.stdout }, { what: `${what} stderr`, text: r.stderr });
  return r;
}

function leaks(texts: { what: string; text: string }[]): string[] {
  const found: string[] = [];
  for (const { what, text } of texts) {
    for (const [name, secret] of Object.entries(SECRETS)) if (text.includes(secret)) found.push(`${name} in ${what}`);
  }
  return found;
}

async function logFiles(): Promise<{ what: string; text: string }[]> {
  const dir = join(env.config.stateDir, 'log');
  const names = await readdir(dir).catch(() => [] as string[]);
  return Promise.all(names.map(async (n) => ({ what: `log ${n}`, text: await readFile(join(dir, n), 'utf8') })));
}

describe('secrets stay out of output and logs', () => {
  it('--root-password-file: dry run (text and --json) and a real build', async () => {
    const pw = join(env.dir, 'root.pw');
    const base = ['--bundle', bundle, '--memory', '256M', '--disk', '1G', '--swap', '0', '--net', 'none', '--root-password-file', pw];
    const dry = await cli('build --dry-run', ['vm', 'build', uniqueName('vmfsec'), ...base, '--dry-run']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    const dryJson = await cli('build --dry-run --json', ['vm', 'build', uniqueName('vmfsec'), ...base, '--dry-run', '--json']);
    expect(dryJson.exitCode, dryJson.stderr).toBe(0);
    for (const line of dryJson.stdout.trim().split('\n')) JSON.parse(line);

    const name = uniqueName('vmfsec');
    try {
      const built = await cli('build --json', ['vm', 'build', name, ...base, '--no-start', '--no-autostart', '--json']);
      expect(built.exitCode, built.stderr).toBe(0);
      // The hash went into the guest's shadow; the plain password went nowhere vmforge writes.
      const show = await cli('vm show --json', ['vm', 'show', name, '--json']);
      expect(show.exitCode, show.stderr).toBe(0);
    } finally {
      await cli('vm destroy', ['vm', 'destroy', name]);
    }
    expect(await leftovers(env, name)).toEqual([]);
    // A failing build (injected fault after the guest was configured) logs its error and undo events too.
    const failed = await cli('build with fault', ['vm', 'build', uniqueName('vmfsec'), ...base, '--no-start', '--json'], { VMFORGE_FAULT: 'after:guest.configure' });
    expect(failed.exitCode).not.toBe(0);
    expect(leaks(seen)).toEqual([]);
    expect(leaks(await logFiles())).toEqual([]);
  });

  it('repository tokens: bundle list/pull against repo serve, from the token file, the environment, wrong, in the URL', async () => {
    const listed = await cli('bundle list --repo', ['bundle', 'list', '--repo', repoUrl]);
    expect(listed.exitCode, listed.stderr).toBe(0);
    const listedJson = await cli('bundle list --repo --json', ['bundle', 'list', '--repo', repoUrl, '--json']);
    expect(listedJson.exitCode, listedJson.stderr).toBe(0);
    JSON.parse(listedJson.stdout);
    const missing = await cli('bundle pull missing', ['bundle', 'pull', 'nosuch:1', '--repo', repoUrl, '--json']);
    expect(missing.exitCode).toBe(4);

    // VMFORGE_REPO_TOKEN wins over the file: the server does not know it.
    const envTok = await cli('bundle list, env token', ['bundle', 'list', '--repo', repoUrl, '--json'], { VMFORGE_REPO_TOKEN: SECRETS.envToken });
    expect(envTok.exitCode, envTok.stderr).toBe(12);
    const wrong = await cli('bundle list, wrong token', ['bundle', 'list', '--repo', repoUrl], { VMFORGE_REPO_TOKEN: SECRETS.wrongToken });
    expect(wrong.exitCode, wrong.stderr).toBe(12);
    expect(wrong.stderr).toMatch(/^error: /m);

    // Credentials in the URL's user info are refused before any request, without printing the URL back.
    const port = new URL(repoUrl).port;
    const inUrl = await cli('bundle list, URL user info', ['bundle', 'list', '--repo', `http://admin:${SECRETS.urlPassword}@127.0.0.1:${port}`]);
    const unreachable = await cli('bundle list, URL user info, nobody listening', ['bundle', 'list', '--repo', `http://admin:${SECRETS.urlPassword}@127.0.0.1:9`]);
    for (const r of [inUrl, unreachable]) {
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/^error: the repository URL must not hold credentials$/m);
    }

    server?.kill('SIGTERM');
    await server;
    expect(serverOut).toMatch(/"status":200,"token":"ci-reader"/);
    expect(serverOut).toMatch(/"status":401,"token":null/);
    expect(leaks([...seen, { what: 'repo serve output', text: serverOut }])).toEqual([]);
    expect(leaks(await logFiles())).toEqual([]);
  });
});
