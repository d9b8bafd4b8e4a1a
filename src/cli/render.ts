/**
 * Renders pipeline events: human progress lines with per-step timings (stderr), or JSON lines (--json,
 * stdout). Data results go to stdout; progress never does in human mode, so output stays pipeable.
 */
import type { PipelineEvent } from '../pipeline/events.js';
import { formatSize } from '../core/units.js';

export interface Renderer {
  event(e: PipelineEvent): void;
  result(data: unknown, human: () => string): void;
}

export function makeRenderer(json: boolean, out: NodeJS.WriteStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Renderer {
  if (json) {
    return {
      event: (e) => out.write(`${JSON.stringify({ event: e.type, ...e, type: undefined })}\n`),
      result: (data) => out.write(`${JSON.stringify({ event: 'result', result: data })}\n`),
    };
  }
  const tty = Boolean(err.isTTY);
  let lastProgress = 0;
  let progressShown = false;
  const clearProgress = () => {
    if (tty && progressShown) err.write('\r\x1b[K');
    progressShown = false;
  };
  return {
    event(e) {
      switch (e.type) {
        case 'step.start':
          clearProgress();
          if (tty) {
            err.write(`  [${String(e.index + 1).padStart(2)}/${e.total}] ${e.title} …`);
            progressShown = true;
          }
          break;
        case 'step.progress': {
          const now = Date.now();
          if (!tty || now - lastProgress < 200) break;
          lastProgress = now;
          const done = e.unit === 'bytes' ? formatSize(e.done) : String(e.done);
          const total = e.total === undefined ? '' : ` / ${e.unit === 'bytes' ? formatSize(e.total) : e.total}`;
          err.write(`\r\x1b[K        ${done}${total}`);
          progressShown = true;
          break;
        }
        case 'step.info':
          clearProgress();
          err.write(`        ${e.message}\n`);
          break;
        case 'step.done':
          clearProgress();
          err.write(`  ✓ ${e.title.padEnd(44)} ${fmtMs(e.durationMs).padStart(8)}\n`);
          break;
        case 'step.failed':
          clearProgress();
          err.write(`  ✗ ${e.title.padEnd(44)} ${fmtMs(e.durationMs).padStart(8)}\n`);
          break;
        case 'undo.start':
          if (e.count) err.write(`  undoing ${e.count} change(s):\n`);
          break;
        case 'undo.done':
          err.write(`    ↶ ${e.what}\n`);
          break;
        case 'undo.failed':
          err.write(`    ! could not ${e.what}: ${e.error}\n`);
          break;
        case 'pipeline.done':
          err.write(`  total ${fmtMs(e.durationMs)}\n`);
          break;
        case 'pipeline.failed':
          err.write(`  failed after ${fmtMs(e.durationMs)}; undone ${e.undone} change(s)${e.undoFailures ? `, ${e.undoFailures} undo failure(s)` : ''}\n`);
          break;
      }
    },
    result(_data, human) {
      const text = human();
      if (text) out.write(text.endsWith('\n') ? text : `${text}\n`);
    },
  };
}

export function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function table(rows: string[][], header: string[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
