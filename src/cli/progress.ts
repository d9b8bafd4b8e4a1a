/**
 * Progress on stderr for long byte transfers (bundle create, import, publish, pull): on a terminal one line
 * updated in place, otherwise a plain line every few seconds (logs of a cron job stay readable); nothing in
 * --json mode, whose stdout carries only the result.
 */
import { formatSize } from '../core/units.js';

export interface ProgressLine {
  /** Throttled: shown at most every 200 ms on a terminal, every 5 s otherwise. */
  update(text: string): void;
  /** Always shown, on its own line. */
  line(text: string): void;
  /** Clears an in-place line. */
  clear(): void;
}

export function progressLine(json: boolean, err: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): ProgressLine {
  const tty = Boolean(err.isTTY) && !json;
  let last = 0;
  let shown = false;
  const clear = () => {
    if (tty && shown) err.write('\r\x1b[K');
    shown = false;
  };
  return {
    update(text) {
      const t = now();
      if (json || t - last < (tty ? 200 : 5000)) return;
      last = t;
      if (tty) {
        err.write(`\r\x1b[K  ${text}`);
        shown = true;
      } else {
        err.write(`  ${text}\n`);
      }
    },
    line(text) {
      if (json) return;
      clear();
      err.write(`  ${text}\n`);
    },
    clear,
  };
}

/**
 * Bytes per second over roughly the last `windowMs` (a recent rate, not the average since the start, so a
 * stall shows), from (time, bytes) samples.
 */
export class RateMeter {
  private samples: [number, number][] = [];

  constructor(private readonly windowMs = 5000) {}

  sample(bytes: number, t: number): number {
    this.samples.push([t, bytes]);
    while (this.samples.length > 2 && t - (this.samples[1] as [number, number])[0] >= this.windowMs) this.samples.shift();
    const [t0, b0] = this.samples[0] as [number, number];
    return t > t0 ? ((bytes - b0) * 1000) / (t - t0) : 0;
  }
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatSize(Math.max(0, Math.round(bytesPerSecond)))}/s`;
}

/** `1.2 GiB / 4.0 GiB (30%), 210 MiB/s` */
export function formatTransfer(bytes: number, total: number | undefined, rate: number): string {
  const of = total ? ` / ${formatSize(total)} (${Math.floor((bytes * 100) / total)}%)` : '';
  return `${formatSize(bytes)}${of}, ${formatRate(rate)}`;
}

/** A progress line fed with byte counts: renders `label: bytes / total (pct), rate`. */
export function byteProgress(p: ProgressLine, now: () => number = () => performance.now()) {
  const meter = new RateMeter();
  const t0 = now();
  return {
    update(label: string, bytes: number, total?: number, extra = '') {
      p.update(`${label}: ${formatTransfer(bytes, total, meter.sample(bytes, now()))}${extra}`);
    },
    /** Average rate since the start, for the summary. */
    average(bytes: number): number {
      const s = (now() - t0) / 1000;
      return s > 0 ? bytes / s : 0;
    },
    seconds(): number {
      return (now() - t0) / 1000;
    },
  };
}
