/** `host check` lines: a mark, what, what was found, how long it took; the fix on its own line below. */
import type { CheckResult } from '../core/host/check-report.js';
import { fmtMs } from './render.js';

const MARK = { ok: '✓', warn: '⚠', fail: '✗' } as const;

export function renderCheckLine(r: CheckResult): string {
  const line = `  ${MARK[r.status]} ${r.title}: ${r.detail}  (${fmtMs(r.ms)})\n`;
  return r.fix && r.status !== 'ok' ? `${line}      fix: ${r.fix}\n` : line;
}
