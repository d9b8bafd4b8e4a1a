/**
 * What a build does to reach a disk image's partitions, done once for real on throwaway files: a loop device at a
 * partition's offset (or partx on a whole-disk loop), and a qcow2 image seen as raw through qemu-storage-daemon's
 * FUSE export (the warm path's clones).
 */
import { access, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '../../core/units.js';
import { VmforgeError } from '../../errors.js';
import { requireDaemonRunner } from '../../exec/daemon.js';
import { which } from '../../exec/host-tools.js';
import { attachLoop, detachLoop } from '../../exec/tools/loop.js';
import { exportQcow2AsRaw } from '../../exec/tools/qsd-fuse.js';
import { qcow2Missing } from '../clone-choice.js';
import { findingOf, type CheckEnv, type Finding } from '../host-check.js';

export async function diskAccessChecks(env: CheckEnv): Promise<Finding[]> {
  const { config, runner } = env.ctx;
  // Under the run dir when there is one (the filesystem a build's scratch files are on); a check makes no state dirs.
  const base = (await access(config.runDir).then(() => true, () => false)) ? config.runDir : tmpdir();
  const dir = await mkdtemp(join(base, 'vmforge-host-check-'));
  try {
    const loop = await findingOf('disk.loop', `loop devices (${config.storage.partitionAccess})`, async () => {
      const file = join(dir, 'disk.img');
      await writeFile(file, '');
      await truncate(file, 8 * MiB);
      // A partition's window, as a build attaches one: offset 1 MiB, 4 MiB long.
      const ref = await attachLoop(runner, { file, offsetBytes: MiB, sizeBytes: 4 * MiB, attempts: 3 });
      await detachLoop(runner, ref);
      if (config.storage.partitionAccess === 'partx' && !which('partx')) {
        return { status: 'fail', detail: `loop devices work (${ref.device}); partx is missing`, fix: 'apt-get install util-linux, or set storage.partitionAccess: loop-offset' };
      }
      return { detail: `attached and detached ${ref.device} at a partition offset` };
    });
    if (loop.status === 'fail' && !loop.fix) loop.fix = 'modprobe loop (and check /dev/loop-control exists); in a container, give it the loop devices';

    // Without the FUSE export the warm path is off and every build is cold: slower, but it works (unless asked for).
    const needed = config.storage.clone === 'qcow2';
    const fuse = await findingOf(
      'disk.fuse',
      'FUSE export of a qcow2 image (qemu-storage-daemon)',
      async () => {
        // The same precondition the build's clone choice applies, then the export itself.
        const missing = await qcow2Missing();
        if (missing) throw new VmforgeError('MISSING_TOOL', missing, { hint: 'modprobe fuse (in a container: pass /dev/fuse in); apt-get install qemu-utils qemu-system-common' });
        const qcow2 = join(dir, 'probe.qcow2');
        await runner.run(['qemu-img', 'create', '-q', '-f', 'qcow2', qcow2, '1M'], { timeoutMs: 30_000, signal: env.signal });
        const exp = await exportQcow2AsRaw(requireDaemonRunner(runner), { qcow2Path: qcow2, exportPath: join(dir, 'probe.raw'), readOnly: true, expectedSizeBytes: MiB, signal: env.signal });
        await exp.stop();
        return { detail: 'exported a qcow2 image as a raw file and stopped the export: warm builds (--clone qcow2) work' };
      },
      needed ? 'fail' : 'warn',
    );
    if (fuse.status === 'warn') fuse.detail += ': builds fall back to the cold path (storage.clone auto)';
    return [loop, fuse];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
