import { beforeEach, describe, expect, it } from 'vitest';
import { VmforgeError } from '../errors.js';
import { openDb, type Db } from '../store/db.js';
import { JobRepo } from '../store/jobs.js';
import type { PipelineEvent } from './events.js';
import { parseFault } from './fault.js';
import { runPipeline, type Step } from './pipeline.js';
import type { UndoRecord, UndoRegistry } from './undo.js';

function registry(log: string[], failKinds: string[] = []): UndoRegistry {
  const exec = async (r: UndoRecord) => {
    if (failKinds.includes(r.kind)) throw new Error(`cannot ${r.kind}`);
    log.push(`${r.kind}:${'path' in r ? r.path : 'name' in r ? r.name : ''}`);
  };
  return {
    'file.remove': exec,
    'dir.remove': exec,
    'loop.detach-backing': exec,
    'mount.umount': exec,
    'lv.remove': exec,
    'fuse.unexport': exec,
    'domain.remove': exec,
    'inventory.forget': exec,
    'lease.release': exec,
    'dhcp.release': exec,
    'dns.remove': exec,
  };
}

const fileStep = (id: string, path: string, effects: string[]): Step<unknown> => ({
  id,
  title: `make ${path}`,
  async run(ctx) {
    await ctx.willUndo({ kind: 'file.remove', path });
    effects.push(path);
  },
});

describe('pipeline', () => {
  let db: Db;
  let jobs: JobRepo;
  beforeEach(async () => {
    db = await openDb(':memory:');
    jobs = new JobRepo(db);
  });

  it('runs steps in order, records timings, clears the journal on success', async () => {
    const effects: string[] = [];
    const events: PipelineEvent[] = [];
    const jobId = await jobs.start('build', 'vm1');
    const t = await runPipeline({
      steps: [fileStep('a', '/a', effects), fileStep('b', '/b', effects)],
      state: {},
      jobs,
      jobId,
      undo: registry([]),
      emit: (e) => events.push(e),
      signal: new AbortController().signal,
    });
    expect(effects).toEqual(['/a', '/b']);
    expect(t.map((x) => x.step)).toEqual(['a', 'b']);
    expect(await jobs.pendingUndo(jobId)).toEqual([]);
    expect((await jobs.timings(jobId)).map((r) => r.status)).toEqual(['done', 'done']);
    expect(events.at(-1)?.type).toBe('pipeline.done');
  });

  it('undoes everything done so far, newest first, when a step fails', async () => {
    const effects: string[] = [];
    const undone: string[] = [];
    const jobId = await jobs.start('build', 'vm1');
    const failing: Step<unknown> = {
      id: 'c',
      title: 'fails',
      async run(ctx) {
        await ctx.willUndo({ kind: 'mount.umount', target: '/m' });
        throw new VmforgeError('COMMAND_FAILED', 'mount exploded');
      },
    };
    await expect(
      runPipeline({
        steps: [fileStep('a', '/a', effects), fileStep('b', '/b', effects), failing, fileStep('d', '/d', effects)],
        state: {},
        jobs,
        jobId,
        undo: registry(undone),
        emit: () => {},
        signal: new AbortController().signal,
      }),
    ).rejects.toThrow('mount exploded');
    expect(effects).toEqual(['/a', '/b']);
    expect(undone).toEqual(['mount.umount:', 'file.remove:/b', 'file.remove:/a']);
    expect(await jobs.pendingUndo(jobId)).toEqual([]);
  });

  it('reports undo failures with the original error, not instead of it', async () => {
    const jobId = await jobs.start('build', 'vm1');
    const err = await runPipeline({
      steps: [fileStep('a', '/a', []), { id: 'b', title: 'b', run: async () => Promise.reject(new Error('original')) }],
      state: {},
      jobs,
      jobId,
      undo: registry([], ['file.remove']),
      emit: () => {},
      signal: new AbortController().signal,
    }).catch((e: VmforgeError) => e);
    expect(err).toBeInstanceOf(VmforgeError);
    expect((err as VmforgeError).message).toBe('original');
    expect((err as VmforgeError).undoErrors.map((e) => e.message)).toEqual(['remove file /a: cannot file.remove']);
    // the failed record stays pending so `recover` can retry it
    expect((await jobs.pendingUndo(jobId)).length).toBe(1);
  });

  it('injects faults before and after a step', async () => {
    for (const [fault, expected] of [
      ['before:b', ['/a']],
      ['after:b', ['/a', '/b']],
    ] as const) {
      const effects: string[] = [];
      const undone: string[] = [];
      const jobId = await jobs.start('build', 'vm1');
      await expect(
        runPipeline({
          steps: [fileStep('a', '/a', effects), fileStep('b', '/b', effects), fileStep('c', '/c', effects)],
          state: {},
          jobs,
          jobId,
          undo: registry(undone),
          emit: () => {},
          signal: new AbortController().signal,
          fault: parseFault(fault),
        }),
      ).rejects.toThrow(/injected fault/);
      expect(effects).toEqual(expected);
      expect(undone).toEqual([...expected].reverse().map((p) => `file.remove:${p}`));
    }
  });

  it('stops and undoes on abort', async () => {
    const ac = new AbortController();
    const undone: string[] = [];
    const jobId = await jobs.start('build', 'vm1');
    const abortingStep: Step<unknown> = {
      id: 'b',
      title: 'b',
      async run(ctx) {
        await ctx.willUndo({ kind: 'file.remove', path: '/b' });
        ac.abort();
      },
    };
    const err = await runPipeline({
      steps: [fileStep('a', '/a', []), abortingStep, fileStep('c', '/c', [])],
      state: {},
      jobs,
      jobId,
      undo: registry(undone),
      emit: () => {},
      signal: ac.signal,
    }).catch((e: VmforgeError) => e);
    expect((err as VmforgeError).code).toBe('CANCELLED');
    expect(undone).toEqual(['file.remove:/b', 'file.remove:/a']);
  });

  it('rejects malformed fault specs', () => {
    expect(() => parseFault('during:x')).toThrow(/before:STEP, after:STEP or pause:STEP/);
    expect(parseFault(undefined)).toBeNull();
  });
});
