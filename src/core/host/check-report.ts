/**
 * `vmforge host check`: what one check reports, the thresholds that turn a measurement into ✓ / ⚠ / ✗, and the
 * summary. Pure: the checks that read the host live in src/app/host-checks, the rendering in the CLI.
 */
import { formatSize, GiB, MiB } from '../units.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** Stable id for scripts (`--json`), e.g. 'libvirt.define', 'network.lan.bridge'. */
  id: string;
  /** What was checked, for people: 'libvirt reachable', 'bridge br0 (network lan)'. */
  title: string;
  status: CheckStatus;
  /** What was found: a fact, a figure, or the error. */
  detail: string;
  /** What to do about a ⚠ or ✗ (one line; a command where there is one). */
  fix?: string;
  /** How long the check took. */
  ms: number;
}

export interface CheckSummary {
  ok: number;
  warn: number;
  fail: number;
  /** 0 only when nothing failed: warnings are things a build survives. */
  exitCode: 0 | 1;
}

export function summarize(results: readonly CheckResult[]): CheckSummary {
  const count = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  const fail = count('fail');
  return { ok: count('ok'), warn: count('warn'), fail, exitCode: fail ? 1 : 0 };
}

/**
 * Free space where vmforge writes. Below `failBelow` a build cannot finish (a golden image, a bundle pull or even
 * the journal runs out); below `warnBelow` a default-sized VM disk would not fit if it were written out in full.
 */
export function spaceVerdict(freeBytes: number, opts: { warnBelow: number; failBelow?: number }): { status: CheckStatus; detail: string } {
  const failBelow = opts.failBelow ?? MIN_FREE_BYTES;
  const detail = `${formatSize(freeBytes)} free`;
  if (freeBytes < failBelow) return { status: 'fail', detail: `${detail} (less than ${formatSize(failBelow)})` };
  if (freeBytes < opts.warnBelow) return { status: 'warn', detail: `${detail} (less than ${formatSize(opts.warnBelow)}, the default disk size)` };
  return { status: 'ok', detail };
}

/** Below this a directory vmforge writes to fails the check: the smallest golden image or bundle does not fit. */
export const MIN_FREE_BYTES = 512 * MiB;

/**
 * libvirt's answer times. `virsh version` asks the QEMU driver for its capabilities; a define validates the XML
 * against them. Both are tens of milliseconds on a healthy host; seconds mean libvirtd is re-probing QEMU (it does
 * so on every call while a /dev/kvm it cannot use is present), or the host is overloaded.
 */
export const SLOW_LIBVIRT_CALL_MS = 2_000;

export function latencyVerdict(ms: number, what: string, likelyCause?: string): { status: CheckStatus; detail: string; fix?: string } {
  const took = ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
  if (ms < SLOW_LIBVIRT_CALL_MS) return { status: 'ok', detail: `${what} took ${took}` };
  return {
    status: 'warn',
    detail: `${what} took ${took} (more than ${SLOW_LIBVIRT_CALL_MS / 1000} s)`,
    fix: likelyCause ?? 'see /var/log/libvirt/libvirtd.log; a loaded host or libvirtd re-probing QEMU on every call makes every build slower',
  };
}

/** A size for messages: 'no limit' style values are never passed here. */
export const DEFAULT_WARN_FREE_BYTES = 4 * GiB;
