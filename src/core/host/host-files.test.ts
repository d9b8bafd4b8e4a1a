import { describe, expect, it } from 'vitest';
import { parseCpuFlags, parseGroup, parseKvmModules, parsePasswd, parseQemuConf, resolveQemuUser } from './host-files.js';

const passwd = 'root:x:0:0:root:/root:/bin/bash\nlibvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\nbroken line\n';
const group = 'root:x:0:\nkvm:x:108:libvirt-qemu\nlibvirt-qemu:x:64055:libvirt-qemu\nlibvirt:x:109:\n';

describe('host file parsers', () => {
  it('CPU flags from any processor block', () => {
    expect(parseCpuFlags('processor\t: 0\nflags\t\t: fpu vme sse2 vmx ept\n\nprocessor\t: 1\nflags\t\t: fpu\n')).toEqual({ vmx: true, svm: false });
    expect(parseCpuFlags('flags\t\t: fpu svm npt\n')).toEqual({ vmx: false, svm: true });
    // A flag name that merely contains vmx (vmx_something) is not vmx.
    expect(parseCpuFlags('flags\t\t: fpu vmxe\n')).toEqual({ vmx: false, svm: false });
  });

  it('kvm modules from /proc/modules', () => {
    const text = 'kvm_pvm 90112 0 - Live 0x0\nkvm 1146880 1 kvm_pvm, Live 0x0\nirqbypass 12288 1 kvm, Live 0x0\nkvmgt 1 0 - Live 0x0\n';
    expect(parseKvmModules(text)).toEqual(['kvm_pvm', 'kvm']);
  });

  it("qemu.conf: set values, and the packaging's commented defaults", () => {
    const debian = '# The user for QEMU processes\n#       user = "qemu"   # A user named "qemu"\n#user = "libvirt-qemu"\n\n#group = "libvirt-qemu"\n';
    expect(parseQemuConf(debian)).toEqual({ defaultUser: 'libvirt-qemu', defaultGroup: 'libvirt-qemu' });
    expect(parseQemuConf(`${debian}user = "root"\n  group = "+0"\n`)).toMatchObject({ user: 'root', group: '+0' });
  });

  it('passwd and group', () => {
    expect(parsePasswd(passwd)).toEqual([
      { name: 'root', uid: 0, gid: 0 },
      { name: 'libvirt-qemu', uid: 64055, gid: 108 },
    ]);
    expect(parseGroup(group)[1]).toEqual({ name: 'kvm', gid: 108, members: ['libvirt-qemu'] });
  });
});

describe('resolveQemuUser', () => {
  it("Debian's defaults: libvirt-qemu, its group plus the supplementary kvm", () => {
    const q = resolveQemuUser(parseQemuConf('#user = "libvirt-qemu"\n#group = "libvirt-qemu"\n'), parsePasswd(passwd), parseGroup(group));
    expect(q).toEqual({ user: 'libvirt-qemu', group: 'libvirt-qemu', uid: 64055, gid: 64055, groups: [64055, 108], groupNames: ['libvirt-qemu', 'kvm'], source: 'default' });
  });

  it('root, +N numbers, and unknown names', () => {
    expect(resolveQemuUser({ user: 'root', group: 'root' }, parsePasswd(passwd), parseGroup(group))).toMatchObject({ uid: 0, gid: 0, groups: [0], source: 'qemu.conf' });
    expect(resolveQemuUser({ user: '+0', group: '+108' }, parsePasswd(passwd), parseGroup(group))).toMatchObject({ uid: 0, gid: 108, groupNames: ['kvm'] });
    expect(resolveQemuUser({ user: 'nobody-here', group: 'nogroup-here' }, [], [])).toMatchObject({ uid: null, gid: null, groups: [] });
    expect(resolveQemuUser({ user: '4242', group: '4243' }, [], [])).toMatchObject({ uid: 4242, gid: 4243 });
  });
});
