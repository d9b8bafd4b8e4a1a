import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { commandFailed, type CommandRunner, type RunResult } from '../runner.js';
import { LibvirtNetworkDhcp } from './libvirt-network.js';

class FakeVirsh implements CommandRunner {
  readonly calls: string[][] = [];
  constructor(private readonly answer: (args: string[]) => string | Error) {}
  async run(argv: readonly string[]): Promise<RunResult> {
    this.calls.push([...argv]);
    const a = this.answer(argv.slice(4));
    if (a instanceof Error) throw a;
    return { stdout: a, stderr: '', exitCode: 0 };
  }
}

const xml = (hosts: string) => `<network><ip address='10.20.0.1' netmask='255.255.255.0'><dhcp>${hosts}</dhcp></ip></network>`;
const INFO = 'Name:           lab\nActive:         yes\nPersistent:     yes\n';
const r = { mac: '52:54:00:aa:bb:01', ip: '10.20.0.5', name: 'web1' };

describe('LibvirtNetworkDhcp', () => {
  it('deletes stale entries (exactly, per state) and adds the host to live and config at once', async () => {
    const live = xml("<host mac='52:54:00:aa:bb:01' name='web1' ip='10.20.0.9'/><host name='web1' ip='10.20.0.6'/><host name='other' ip='10.20.0.10'/>");
    const config = xml("<host mac='52:54:00:aa:bb:01' name='web1' ip='10.20.0.9'/>");
    const fake = new FakeVirsh((a) => (a[0] === 'net-info' ? INFO : a[0] === 'net-dumpxml' ? (a[1] === '--inactive' ? config : live) : ''));
    const res = await new LibvirtNetworkDhcp(fake, 'qemu:///system', 'lab').reserve({ ...r, mac: '52:54:00:AA:BB:01' });
    expect(res.alreadyPresent).toBe(false);
    expect(res.removedStale).toEqual([{ mac: '52:54:00:aa:bb:01', name: 'web1', ip: '10.20.0.9' }, { name: 'web1', ip: '10.20.0.6' }]);
    expect(fake.calls.filter((c) => c[4] === 'net-update')).toEqual([
      ['virsh', '-q', '-c', 'qemu:///system', 'net-update', 'lab', 'delete', 'ip-dhcp-host', "<host mac='52:54:00:aa:bb:01' name='web1' ip='10.20.0.9'/>", '--live'],
      ['virsh', '-q', '-c', 'qemu:///system', 'net-update', 'lab', 'delete', 'ip-dhcp-host', "<host name='web1' ip='10.20.0.6'/>", '--live'],
      ['virsh', '-q', '-c', 'qemu:///system', 'net-update', 'lab', 'delete', 'ip-dhcp-host', "<host mac='52:54:00:aa:bb:01' name='web1' ip='10.20.0.9'/>", '--config'],
      ['virsh', '-q', '-c', 'qemu:///system', 'net-update', 'lab', 'add-last', 'ip-dhcp-host', "<host mac='52:54:00:aa:bb:01' name='web1' ip='10.20.0.5'/>", '--live', '--config'],
    ]);
  });
  it('only touches --config on an inactive network, and is a no-op when present', async () => {
    const fake = new FakeVirsh((a) => (a[0] === 'net-info' ? 'Active: no\nPersistent: yes\n' : xml("<host mac='52:54:00:aa:bb:01' name='web1' ip='10.20.0.5'/>")));
    const res = await new LibvirtNetworkDhcp(fake, 'test:///default', 'lab').reserve(r);
    expect(res).toEqual({ alreadyPresent: true, removedStale: [] });
    expect(fake.calls.map((c) => c.slice(4, 6).join(' '))).toEqual(['net-info lab', 'net-dumpxml --inactive']);
  });
  it('releases exactly the reservation, and absent is fine', async () => {
    const fake = new FakeVirsh((a) => (a[0] === 'net-info' ? INFO : a[1] === '--inactive' ? xml('') : xml("<host mac='52:54:00:aa:bb:01' name='web1' ip='10.20.0.5'/>")));
    await new LibvirtNetworkDhcp(fake, 'qemu:///system', 'lab').release(r);
    expect(fake.calls.filter((c) => c[4] === 'net-update').map((c) => c.slice(6))).toEqual([
      ['delete', 'ip-dhcp-host', "<host mac='52:54:00:aa:bb:01' name='web1' ip='10.20.0.5'/>", '--live'],
    ]);
    const gone = new FakeVirsh(() => commandFailed(['virsh'], 1, "error: failed to get network 'lab'"));
    await new LibvirtNetworkDhcp(gone, 'qemu:///system', 'lab').release(r);
  });
  it('says which network is missing', async () => {
    const gone = new FakeVirsh(() => commandFailed(['virsh'], 1, "error: failed to get network 'lab'"));
    const e = await new LibvirtNetworkDhcp(gone, 'qemu:///system', 'lab').reserve(r).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VmforgeError);
    expect((e as VmforgeError).code).toBe('NOT_FOUND');
    expect((e as VmforgeError).message).toBe("libvirt network 'lab' does not exist on qemu:///system");
  });
});
