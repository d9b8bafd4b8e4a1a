import type { Command } from 'commander';
import { collect, interruptSignal, rendererFor, withContext } from './shared.js';
import { fmtMs, table } from '../render.js';
import { formatSize, MiB } from '../../core/units.js';
import { invalidInput } from '../../errors.js';
import type { BuildRequest } from '../../core/plan/build-request.js';
import type { BuildOptions } from '../../app/build.js';

export function registerVmCommands(program: Command): void {
  const vm = program
    .command('vm')
    .description('build, list, inspect and destroy VMs')
    .addHelpText('after', '\nExamples:\n  vmforge vm build web1 --bundle debian-bookworm --wait\n  vmforge vm list\n  vmforge vm show web1\n  vmforge vm destroy web1');

  vm.command('build')
    .description('build a VM from a bundle: disk, filesystem, guest setup, bootloader, libvirt domain, boot')
    .argument('<name>', 'VM name: an RFC 1123 label (a-z, 0-9, hyphen; at most 63); with --count a pattern with one %d, e.g. web-%d')
    .requiredOption('-b, --bundle <ref>', 'bundle NAME[:VERSION]; pulled from repository.url first when not in the local store')
    .option('--cpus <n>', 'virtual CPUs (default from config: 1)')
    .option('--memory <size>', 'memory, e.g. 1G (default 1G)')
    .option('--disk <size>', 'disk size, e.g. 8G (default 4G)')
    .option('--swap <size>', 'swap partition size, 0 for none (default 512M)')
    .option('--fs <type>', 'root filesystem: ext4 or xfs (default ext4)')
    .option('--network <name>', 'lease address, MAC, gateway, DNS and bridge from this vmforge network (default: config network.default)')
    .option('--ip <cidr>', 'static address with prefix, e.g. 10.20.0.5/24 (default: DHCP); with --network: this address from the pool')
    .option('--mac <mac>', 'this MAC instead of a random one under the hypervisor prefix (52:54:00 for KVM/QEMU, 00:16:3e for Xen)')
    .option('--force', 'replace DNS records of this name that point elsewhere')
    .option('--gateway <ip>', 'default gateway (with --ip)')
    .option('--dns <ip>', 'DNS server (with --ip; repeatable)', collect)
    .option('--bridge <name>', 'attach the NIC to this host bridge')
    .option('--net <spec>', 'NIC attachment: auto, user, none, bridge:NAME, network:NAME (default auto)')
    .option('--root-password-file <file>', 'set root\'s password from the first line of this file (stored hashed)')
    .option('--ssh-key <file>', "add this public key file to root's authorized_keys (repeatable)", collect)
    .option('--timezone <zone>', "the guest's time zone, e.g. Europe/Berlin (default: the template's)")
    .option('--no-host-keys', "do not make the guest's SSH host keys on the host (the guest makes its own at first boot; no fingerprints on record)")
    .option('--cloud-init', 'attach a cloud-init NoCloud seed (instance id, hostname, --ssh-key keys, network) as a CD-ROM')
    .option('--boot <mode>', "grub (default: GRUB in the disk's boot sector) or kernel (QEMU boots the guest's kernel, copied to host storage)")
    .option('--guest-family <family>', 'adapt the guest as this family instead of detecting it: debian, ubuntu, systemd-networkd, rhel-legacy, rhel8, rhel9')
    .option('--selinux <mode>', 'for SELinux guests: relabel (default, on first boot), permissive or disabled')
    .option('--no-start', 'define the domain but do not start it')
    .option('--no-autostart', 'do not mark the domain to start with the host')
    .option('--wait', 'wait until the guest shows its login prompt on the serial console')
    .option('--wait-timeout <seconds>', 'how long --wait waits (default from config: 300)')
    .option('--hypervisor <type>', 'kvm (KVM, or QEMU/TCG when /dev/kvm is missing) or xen (default from config libvirt.hypervisor: kvm)')
    .option('--xen-mode <mode>', 'Xen: pv (default: pygrub, or the kernel from host storage with --boot kernel) or hvm')
    .option('--xen-disk <layout>', 'Xen: partitions (PV default: xvda1 root + xvda2 swap, no partition table) or disk (one disk with an MBR)')
    .option('--storage <backend>', 'file (images in storage.dir), lvm:VG or lvm:VG/THINPOOL (default from config storage.backend: file)')
    .option('--firmware <fw>', 'bios (default) or uefi (OVMF; needs --boot kernel, KVM/QEMU only)')
    .option('--connect <uri>', 'libvirt URI for this command (default from config libvirt.uri), e.g. qemu:///system, xen:///system')
    .option('--clone <strategy>', "disk from the bundle's golden image: auto, qcow2 (overlay), reflink, or off (cold build) (default from config storage.clone: auto)")
    .option('--count <n>', 'build N VMs named from the NAME pattern (%d = 1..N), each its own build; a failed one does not undo the others')
    .option('--first <k>', 'with --count: the number %d takes for the first VM (default 1)')
    .option('--parallel <n>', 'with --count: builds run at once (default from config defaults.parallelBuilds: 2)')
    .option('--dry-run', 'print the plan and the domain XML; change nothing')
    .option('--json', 'machine-readable output: JSON lines of progress events, then the result')
    .addHelpText(
      'after',
      `
Examples:
  vmforge vm build web1 --bundle debian-bookworm
  vmforge vm build web4 --bundle debian-bookworm --clone qcow2   # overlay on the golden image (made once)
  vmforge vm build db1 --bundle debian-bookworm --cpus 2 --memory 4G --disk 20G --fs xfs \\
      --ip 10.20.0.15/24 --gateway 10.20.0.1 --dns 10.20.0.1 --bridge br0 --wait
  vmforge vm build test1 --bundle debian-bookworm --dry-run
  vmforge vm build web2 --bundle debian-bookworm --network lan --wait     # address + DNS + DHCP from 'lan'
  vmforge vm build k1 --bundle debian-bookworm --boot kernel             # direct kernel boot
  vmforge vm build web3 --bundle debian-bookworm --network lan --ip 10.20.0.50 --mac 52:54:00:12:34:56
  vmforge vm build node-%d --bundle debian-bookworm --count 5 --network lan   # node-1 .. node-5
  vmforge vm build x1 --bundle debian-bookworm --hypervisor xen --connect xen:///system   # PV, pygrub, xvda1+xvda2
  vmforge vm build l1 --bundle debian-bookworm --storage lvm:vg0/pool0 --dry-run      # the lvcreate commands
  vmforge vm build u1 --bundle debian-bookworm --firmware uefi --boot kernel           # OVMF
  vmforge vm build c1 --bundle ubuntu-jammy --network lan --ssh-key ~/.ssh/id_ed25519.pub --cloud-init

Every VM gets an empty machine-id and its own SSH host keys, made on the host: 'vmforge vm show NAME'
prints their fingerprints and 'vmforge vm known-hosts NAME' the known_hosts lines.

A failure at any step undoes everything done so far (disk file, loop devices, mounts, domain, lease, DHCP
entry, DNS records, inventory).`,
    )
    .action(async (name: string, opts: Record<string, unknown>, cmd: Command) => {
      if (opts.count !== undefined) {
        const { runBuildMany } = await import('./vm-build-many.js');
        return runBuildMany(cmd, name, buildRequestOf(opts), buildOptionsOf(opts), opts);
      }
      for (const flag of ['first', 'parallel'] as const) {
        if (opts[flag] !== undefined) throw invalidInput(`--${flag} goes with --count`, `add --count N and a NAME pattern with %d, or drop --${flag}`);
      }
      const r = rendererFor(cmd);
      const { signal, dispose } = interruptSignal();
      try {
        await withContext(cmd, async (ctx) => {
          const { buildVm } = await import('../../app/build.js');
          const res = await buildVm(ctx, { name, ...buildRequestOf(opts) }, { ...buildOptionsOf(opts), emit: (e) => r.event(e), signal });
          r.result(res, () => {
            if (res.dryRun) return `${res.planText}\n\n${res.domainXml}`;
            const lines = [`VM ${res.name} built: ${res.state}${res.ip ? `, ${res.ip}` : ''}${res.mac ? `, MAC ${res.mac}` : ', no NIC'}${res.network ? ` (network ${res.network})` : ''}`];
            if (res.dns?.length) lines.push(`DNS: ${res.dns.join('; ')}`);
            if (res.bootSeconds !== undefined) lines.push(`booted to login prompt in ${res.bootSeconds.toFixed(1)} s`);
            if (res.loginLine) lines.push(`console: ${res.loginLine}`);
            for (const k of res.sshHostKeys ?? []) lines.push(`SSH host key: ${k.type.padEnd(7)} ${k.fingerprint}`);
            if (res.cloudInitSeed) lines.push(`cloud-init seed: ${res.cloudInitSeed}`);
            return lines.join('\n');
          });
        }, { readOnly: Boolean(opts.dryRun) });
      } finally {
        dispose();
      }
    });

  vm.command('list')
    .description('list VMs in the inventory with their live libvirt state')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge vm list\n  vmforge vm list --json | jq -r ".[].name"')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { listVms } = await import('../../app/inventory.js');
        const vms = await listVms(ctx);
        if (opts.json) return void process.stdout.write(`${JSON.stringify(vms, null, 2)}\n`);
        if (!vms.length) return void process.stdout.write('no VMs\n');
        process.stdout.write(
          `${table(
            vms.map((v) => [v.name, v.status, v.state ?? '-', String(v.cpus), formatSize(v.memoryMiB * MiB), formatSize(v.diskBytes), v.ip ?? '-', v.mac ?? '-', v.bundle]),
            ['NAME', 'STATUS', 'STATE', 'CPUS', 'MEMORY', 'DISK', 'IP', 'MAC', 'BUNDLE'],
          )}\n`,
        );
      });
    });

  vm.command('show')
    .description("show one VM: spec, resources, libvirt state and the build's step timings")
    .argument('<name>', 'VM name')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge vm show web1\n  vmforge vm show web1 --json')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { showVm } = await import('../../app/inventory.js');
        const v = await showVm(ctx, name);
        if (opts.json) return void process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
        const lines = [
          `name:       ${v.name}`,
          `status:     ${v.status} (libvirt: ${v.state ?? 'not defined'})`,
          `uuid:       ${v.uuid}`,
          `bundle:     ${v.bundle} (sha256 ${v.bundleSha256.slice(0, 12)}…)`,
          `cpus:       ${v.cpus}`,
          `memory:     ${formatSize(v.memoryMiB * MiB)}`,
          `disk:       ${v.diskPath} (${formatSize(v.diskBytes)}, ${v.fs}, swap ${formatSize(v.swapBytes)})`,
          `network:    ${v.nic}; guest ${v.net}; MAC ${v.mac ?? '-'}`,
          `console:    ${v.consoleLog ?? '-'}`,
          `created:    ${v.createdAt}`,
        ];
        if (v.bootSeconds !== null) lines.push(`boot:       ${v.bootSeconds.toFixed(1)} s to login prompt`);
        if (v.cloudInitSeed) lines.push(`cloud-init: ${v.cloudInitSeed} (NoCloud seed, CD-ROM)`);
        if (v.sshHostKeys.length) {
          lines.push('ssh host keys:');
          for (const k of v.sshHostKeys) lines.push(`  ${k.type.padEnd(8)} ${k.fingerprint}`);
        } else {
          lines.push('ssh host keys: none on record');
        }
        if (v.timings.length) {
          lines.push('build steps:');
          for (const t of v.timings) lines.push(`  ${t.title.padEnd(44)} ${fmtMs(t.durationMs).padStart(9)}  ${t.status}`);
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      });
    });

  vm.command('known-hosts')
    .description("print known_hosts lines for the VM's SSH host keys (its name, FQDN and address)")
    .argument('<name>', 'VM name')
    .addHelpText(
      'after',
      `
Examples:
  vmforge vm known-hosts web1 >> ~/.ssh/known_hosts
  vmforge vm known-hosts web1 > /tmp/web1.known && ssh -o UserKnownHostsFile=/tmp/web1.known root@web1

Each line names the VM, its FQDN (the network's DNS zone) and its address when vmforge knows them; the keys
are the ones the build made on the host and wrote into the guest (see 'vmforge vm show').`,
    )
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { vmKnownHosts } = await import('../../app/inventory.js');
        process.stdout.write((await vmKnownHosts(ctx, name)).text);
      }, { readOnly: true });
    });

  vm.command('refresh-kernel')
    .description("copy the guest's newest kernel and initrd to the host copies a --boot kernel VM boots")
    .argument('<name>', 'VM name')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge vm refresh-kernel k1      # after apt upgrade installed a new kernel in the guest\n  virsh reboot k1                   # the running domain boots the new kernel on its next start')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const r = rendererFor(cmd);
      await withContext(cmd, async (ctx) => {
        const { refreshKernel } = await import('../../app/refresh-kernel.js');
        const res = await refreshKernel(ctx, name);
        r.result(res, () =>
          [
            `kernel ${res.kernelVersion}: ${res.kernel.from} -> ${res.kernel.to}`,
            ...(res.initrd ? [`initrd: ${res.initrd.from} -> ${res.initrd.to}`] : []),
            ...(res.restartNeeded ? [`${name} is running: it boots this kernel on its next start (virsh reboot ${name})`] : []),
          ].join('\n'),
        );
      });
    });

  vm.command('destroy')
    .description('stop and undefine the domain, remove its disk and console log, and forget the VM')
    .argument('<name>', 'VM name')
    .option('--keep-disk', 'keep the disk image (everything else is removed)')
    .option('--connect <uri>', 'libvirt URI (default from config libvirt.uri)')
    .option('--dry-run', 'list what would be removed; change nothing')
    .option('--json', 'JSON lines of progress events, then the result')
    .addHelpText('after', '\nExamples:\n  vmforge vm destroy web1\n  vmforge vm destroy web1 --keep-disk\n\nRemoves the domain, disk, console log, DNS records and DHCP entry the build made, and releases\nthe address and MAC. Idempotent: a half-built or half-destroyed VM is cleaned up as far as it exists.')
    .action(async (name: string, opts: { keepDisk?: boolean; dryRun?: boolean }, cmd: Command) => {
      const r = rendererFor(cmd);
      const { signal, dispose } = interruptSignal();
      try {
        await withContext(cmd, async (ctx) => {
          const { destroyVm } = await import('../../app/destroy.js');
          const res = await destroyVm(ctx, name, { emit: (e) => r.event(e), signal, keepDisk: Boolean(opts.keepDisk), dryRun: Boolean(opts.dryRun) });
          r.result(res, () =>
            res.dryRun
              ? `Destroying ${name} would (dry run: nothing was changed):\n${(res.steps ?? []).map((x, i) => `  ${String(i + 1).padStart(2)}. ${x.title}`).join('\n')}`
              : `VM ${name} destroyed${res.keptDisk ? `; disk kept at ${res.keptDisk}` : ''}`,
          );
        }, { readOnly: Boolean(opts.dryRun) });
      } finally {
        dispose();
      }
    });
}

/** What `vm build` flags ask for, but the name (one VM's, or each of --count's). */
function buildRequestOf(opts: Record<string, unknown>): Omit<BuildRequest, 'name'> {
  return {
    bundle: opts.bundle as string,
    cpus: opts.cpus as string | undefined,
    memory: opts.memory as string | undefined,
    disk: opts.disk as string | undefined,
    swap: opts.swap as string | undefined,
    fs: opts.fs as string | undefined,
    ip: opts.ip as string | undefined,
    gateway: opts.gateway as string | undefined,
    dns: opts.dns as string[] | undefined,
    bridge: opts.bridge as string | undefined,
    net: opts.net as string | undefined,
    start: opts.start as boolean,
    autostart: opts.autostart as boolean,
    guestFamily: opts.guestFamily as string | undefined,
    network: opts.network as string | undefined,
    mac: opts.mac as string | undefined,
    force: Boolean(opts.force),
    boot: opts.boot as string | undefined,
    selinux: opts.selinux as string | undefined,
    timezone: opts.timezone as string | undefined,
    hypervisor: opts.hypervisor as string | undefined,
    xenMode: opts.xenMode as string | undefined,
    xenDisk: opts.xenDisk as string | undefined,
    storage: opts.storage as string | undefined,
    firmware: opts.firmware as string | undefined,
    hostKeys: opts.hostKeys as boolean,
    cloudInit: Boolean(opts.cloudInit),
  };
}

function buildOptionsOf(opts: Record<string, unknown>): Omit<BuildOptions, 'emit' | 'signal'> {
  return {
    dryRun: Boolean(opts.dryRun),
    wait: Boolean(opts.wait),
    waitTimeoutSeconds: opts.waitTimeout === undefined ? undefined : Number(opts.waitTimeout),
    rootPasswordFile: opts.rootPasswordFile as string | undefined,
    sshKeyFiles: opts.sshKey as string[] | undefined,
    clone: opts.clone as string | undefined,
  };
}
