/**
 * `vm build --count N PATTERN`: runs the builds (src/app/build-many.ts) and reports each VM. Builds run side by
 * side, so human progress is one line per finished step, prefixed with the VM's name (no in-place progress);
 * --json prints every event and each VM's result with a `vm` field, then a summary line.
 */
import type { Command } from 'commander';
import type { BuildOptions } from '../../app/build.js';
import type { BuildManyItem } from '../../app/build-many.js';
import type { BuildRequest } from '../../core/plan/build-request.js';
import { invalidInput } from '../../errors.js';
import type { PipelineEvent } from '../../pipeline/events.js';
import { fmtMs } from '../render.js';
import { interruptSignal, withContext } from './shared.js';

export async function runBuildMany(
  cmd: Command,
  pattern: string,
  req: Omit<BuildRequest, 'name'>,
  buildOpts: Omit<BuildOptions, 'emit' | 'signal'>,
  flags: Record<string, unknown>,
): Promise<void> {
  const count = wholeNumber(flags.count, '--count') as number;
  const first = wholeNumber(flags.first, '--first');
  const parallel = wholeNumber(flags.parallel, '--parallel');
  const json = Boolean(flags.json);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  const { signal, dispose } = interruptSignal();
  try {
    await withContext(
      cmd,
      async (ctx) => {
        const { buildMany, buildManyError } = await import('../../app/build-many.js');
        const res = await buildMany(ctx, pattern, req, {
          ...buildOpts,
          count,
          first,
          parallel,
          signal,
          emit: json ? (vm, e) => out(JSON.stringify({ event: e.type, vm, ...e, type: undefined })) : (vm, e) => humanEvent(vm, e, err),
          onResult: (item) => (json ? out(JSON.stringify(itemJson(item))) : humanResult(item, out, err)),
        });
        if (json) out(JSON.stringify({ event: 'summary', result: { dryRun: res.dryRun, built: res.built, failed: res.failed } }));
        else if (!res.dryRun) err(`${res.built.length} of ${res.results.length} built${res.failed.length ? `; failed: ${res.failed.join(', ')}` : ''}`);
        const failed = buildManyError(res);
        if (failed) throw failed;
      },
      { readOnly: Boolean(buildOpts.dryRun) },
    );
  } finally {
    dispose();
  }
}

function wholeNumber(raw: unknown, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^\d{1,6}$/.test(raw)) throw invalidInput(`${flag} '${String(raw)}' must be a whole number`);
  return Number(raw);
}

function itemJson(item: BuildManyItem): Record<string, unknown> {
  return item.ok ? { event: 'result', vm: item.name, result: item.result } : { event: 'vm.failed', vm: item.name, error: item.error };
}

function humanEvent(vm: string, e: PipelineEvent, err: (line: string) => void): void {
  const p = `[${vm}]`;
  switch (e.type) {
    case 'step.start':
    case 'step.progress':
      break;
    case 'step.info':
      err(`${p}       ${e.message}`);
      break;
    case 'step.done':
      err(`${p} ✓ ${e.title.padEnd(44)} ${fmtMs(e.durationMs).padStart(8)}`);
      break;
    case 'step.failed':
      err(`${p} ✗ ${e.title.padEnd(44)} ${fmtMs(e.durationMs).padStart(8)}`);
      break;
    case 'undo.start':
      if (e.count) err(`${p}   undoing ${e.count} change(s)`);
      break;
    case 'undo.done':
      err(`${p}   ↶ ${e.what}`);
      break;
    case 'undo.failed':
      err(`${p}   ! could not ${e.what}: ${e.error}`);
      break;
    case 'pipeline.done':
      err(`${p} total ${fmtMs(e.durationMs)}`);
      break;
    case 'pipeline.failed':
      err(`${p} failed after ${fmtMs(e.durationMs)}; undone ${e.undone} change(s)${e.undoFailures ? `, ${e.undoFailures} undo failure(s)` : ''}`);
      break;
  }
}

function humanResult(item: BuildManyItem, out: (line: string) => void, err: (line: string) => void): void {
  if (!item.ok) {
    err(`[${item.name}] error: ${item.error.message}`);
    if (item.error.hint) err(`[${item.name}] hint: ${item.error.hint}`);
    for (const u of item.error.undoErrors) err(`[${item.name}] undo also failed: ${u}`);
    return;
  }
  const res = item.result;
  if (res.dryRun) return out(`=== ${res.name}\n${res.planText}\n\n${res.domainXml}\n`);
  out(`VM ${res.name} built: ${res.state}${res.ip ? `, ${res.ip}` : ''}${res.mac ? `, MAC ${res.mac}` : ', no NIC'}${res.network ? ` (network ${res.network})` : ''}`);
}
