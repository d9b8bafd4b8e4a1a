import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { commandFailed, type CommandRunner, type RunResult } from '../runner.js';
import { VirshHypervisor } from './hypervisor.js';

type Reply = string | { fail: string } | RunResult;

/** Answers virsh commands by their subcommand words; records every argv. */
class FakeRunner implements CommandRunner {
  calls: string[][] = [];
  constructor(private readonly replies: (args: string[]) => Reply) {}
  async run(argv: readonly string[]): Promise<RunResult> {
    this.calls.push([...argv]);
    const args = argv.slice(4); // virsh --quiet -c URI
    const r = this.replies(args);
    if (typeof r === 'string') return { stdout: r, stderr: '', exitCode: 0 };
    if ('fail' in r) throw commandFailed(argv, 1, r.fail);
    return r;
  }
}

const NOT_FOUND = { fail: "error: failed to get domain 'vm1'\n" };

describe('VirshHypervisor', () => {
  it('maps a refused connection to HYPERVISOR_UNREACHABLE with a hint', async () => {
    const h = new VirshHypervisor(
      new FakeRunner(() => ({ fail: "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/run/libvirt/libvirt-sock': No such file or directory\n" })),
      'qemu:///system',
    );
    const err = await h.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmforgeError);
    expect((err as VmforgeError).code).toBe('HYPERVISOR_UNREACHABLE');
    expect((err as VmforgeError).message).toMatch(/qemu:\/\/\/system: Failed to connect socket/);
    expect((err as VmforgeError).hint).toMatch(/libvirtd -d/);
  });

  it('defines from a temp file it removes afterwards', async () => {
    let seen = '';
    let path = '';
    const runner = new FakeRunner((args) => {
      path = args[args.length - 1] ?? '';
      seen = readFileSync(path, 'utf8');
      return '';
    });
    await new VirshHypervisor(runner, 'test:///default').defineXml('<domain/>');
    expect(runner.calls[0]?.slice(0, 7)).toEqual(['virsh', '--quiet', '-c', 'test:///default', 'define', '--validate', '--file']);
    expect(seen).toBe('<domain/>');
    expect(existsSync(path)).toBe(false);
  });

  it('defines and marks autostart by UUID in one virsh call; an error on stderr fails it even with exit 0', async () => {
    const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';
    const ok = new FakeRunner(() => '');
    await new VirshHypervisor(ok, 'test:///default').defineXml('<domain/>', { autostartUuid: uuid });
    expect(ok.calls).toHaveLength(1);
    expect(ok.calls[0]?.slice(0, 4)).toEqual(['virsh', '--quiet', '-c', 'test:///default']);
    expect(ok.calls[0]?.[4]).toMatch(new RegExp(`^define --validate --file '/[^' ]+/domain\\.xml' ; autostart --domain ${uuid}$`));

    const defineFailed = new FakeRunner(() => ({ stdout: '', stderr: "error: operation failed: domain 'vm1' already exists with uuid x\n", exitCode: 0 }));
    const err = await new VirshHypervisor(defineFailed, 'test:///default').defineXml('<domain/>', { autostartUuid: uuid }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmforgeError);
    expect((err as VmforgeError).code).toBe('COMMAND_FAILED');
    expect((err as VmforgeError).message).toMatch(/already exists with uuid/);
    await expect(new VirshHypervisor(ok, 'test:///default').defineXml('<domain/>', { autostartUuid: 'vm1; destroy x' })).rejects.toThrow(/not a UUID/);
  });

  it('undefine retries without --nvram where the driver lacks it, and treats absent as done', async () => {
    const runner = new FakeRunner((args) => {
      if (args[0] === 'undefine' && args.includes('--nvram')) return { fail: 'error: unsupported flags (0x4) in function testDomainUndefineFlags' };
      if (args[0] === 'undefine') return NOT_FOUND;
      if (args[0] === 'list') return 'other\n';
      return { fail: 'unexpected' };
    });
    await new VirshHypervisor(runner, 'test:///default').undefine('vm1');
    expect(runner.calls.map((c) => c[4])).toEqual(['undefine', 'undefine', 'list']);
  });

  it('undefine does not swallow a lookup failure for a domain that is still listed', async () => {
    const runner = new FakeRunner((args) => (args[0] === 'list' ? 'vm1\n' : NOT_FOUND));
    await expect(new VirshHypervisor(runner, 'test:///default').undefine('vm1')).rejects.toThrow(/failed to get domain/);
  });

  it('destroy of a stopped domain is success, of a running one that fails is not', async () => {
    const stopped = new FakeRunner((args) =>
      args[0] === 'destroy' ? { fail: 'error: Requested operation is not valid: domain is not running' } : 'shut off\n',
    );
    await new VirshHypervisor(stopped, 'test:///default').destroy('vm1');
    const stuck = new FakeRunner((args) => (args[0] === 'destroy' ? { fail: 'error: domain is not running' } : 'running\n'));
    await expect(new VirshHypervisor(stuck, 'test:///default').destroy('vm1')).rejects.toThrow(/not running/);
  });

  it('state is null for a missing domain; start of one is NOT_FOUND', async () => {
    const runner = new FakeRunner((args) => (args[0] === 'list' ? '\n' : NOT_FOUND));
    const h = new VirshHypervisor(runner, 'test:///default');
    expect(await h.state('vm1')).toBeNull();
    await expect(h.start('vm1')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('passes names after --domain so a leading dash is not an option', async () => {
    const runner = new FakeRunner(() => 'Autostart:      enable\n');
    expect(await new VirshHypervisor(runner, 'test:///default').getAutostart('-x')).toBe(true);
    expect(runner.calls[0]?.slice(4)).toEqual(['dominfo', '--domain', '-x']);
  });
});
