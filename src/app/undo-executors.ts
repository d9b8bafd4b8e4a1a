/** The undo registry: one idempotent executor per undo record kind, bound to the app's executors. */
import { rm, rmdir } from 'node:fs/promises';
import type { UndoRegistry } from '../pipeline/undo.js';
import { readDomainFacts } from '../core/domain-xml/facts.js';
import { VmforgeError } from '../errors.js';
import { detachWholeWithPartx, loopsBackingFile } from '../exec/tools/loop.js';
import { umount } from '../exec/tools/mount.js';
import { runLvmArgv } from '../exec/storage/lvm-facts.js';
import { recoverFuseExport } from '../exec/tools/qsd-fuse.js';
import { fuseExportDaemonPids } from '../exec/tools/qsd-find.js';
import { VirshHypervisor } from '../exec/libvirt/hypervisor.js';
import type { AppContext } from './context.js';
import { dhcpReservationsFor } from './dhcp.js';
import { dnsRegistrarFor } from '../exec/dns/from-config.js';
import { zonesForUndo } from '../core/dns/index.js';

export function undoRegistry(ctx: Pick<AppContext, 'runner' | 'hypervisor' | 'vms' | 'leases' | 'config'>): UndoRegistry {
  return {
    'file.remove': async (r) => {
      await rm(r.path, { force: true });
    },
    'dir.remove': async (r) => {
      // Only an empty directory: if something is still mounted or inside, that is a leak to report, not delete.
      await rmdir(r.path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    },
    'loop.detach-backing': async (r) => {
      for (const l of await loopsBackingFile(ctx.runner, r.backingFile)) {
        await detachWholeWithPartx(ctx.runner, l);
      }
    },
    'mount.umount': async (r) => {
      await umount(ctx.runner, r.target);
    },
    'lv.remove': async (r) => {
      if (r.argv[0] !== 'lvremove') throw new VmforgeError('INTERNAL', `lv.remove undo record holds ${JSON.stringify(r.argv)}, not an lvremove`);
      await runLvmArgv(ctx.runner, r.argv);
    },
    'fuse.unexport': async (r) => {
      const pids = await fuseExportDaemonPids(r.exportPath);
      // No daemon left: still unmount a stale mount and remove the export file.
      for (const pid of pids.length ? pids : [0]) await recoverFuseExport(ctx.runner, { exportPath: r.exportPath, qcow2Path: r.qcow2Path, pid });
    },
    'domain.remove': async (r) => {
      const hv = r.uri === ctx.config.libvirt.uri ? ctx.hypervisor : new VirshHypervisor(ctx.runner, r.uri);
      const xml = await hv.dumpXml(r.name, { inactive: true }).catch((e: unknown) => {
        if (e instanceof VmforgeError && e.code === 'NOT_FOUND') return null;
        throw e;
      });
      if (xml === null || readDomainFacts(xml).uuid !== r.uuid.toLowerCase()) return; // gone, or not ours
      await hv.destroy(r.name);
      await hv.undefine(r.name);
    },
    'inventory.forget': async (r) => {
      await ctx.vms.remove(r.name);
    },
    'lease.release': async (r) => {
      await ctx.leases.release(r.vm);
    },
    'dhcp.release': async (r) => {
      if (r.dhcp.mode === 'none') return;
      await dhcpReservationsFor(ctx, r.dhcp, r.uri).release(r.reservation);
    },
    'dns.remove': async (r) => {
      if (!r.records.length) return;
      // Only server and key file matter for removal; TTLs travel with each record, zones come from the current
      // config where it names one (a wrong dns.reverseZone, once fixed, must not leave an undo that cannot run).
      const records = zonesForUndo(r.records, ctx.config.dns ?? undefined);
      await dnsRegistrarFor(ctx.runner, { ...r.settings, zone: records[0]?.zone ?? '.', ttl: 0 }).unregister(records);
    },
  };
}
