import { describe, expect, it } from 'vitest';
import { formatRate, formatTransfer, progressLine, RateMeter } from './progress.js';

function fakeStream(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream };
}

describe('progress', () => {
  it('measures a recent rate, so a stall shows', () => {
    const m = new RateMeter(5000);
    expect(m.sample(0, 0)).toBe(0);
    expect(m.sample(100 * 1024 * 1024, 1000)).toBe(100 * 1024 * 1024);
    m.sample(200 * 1024 * 1024, 2000);
    // Stalled for 10 s: the window has moved past the fast part.
    m.sample(200 * 1024 * 1024, 8000);
    expect(m.sample(200 * 1024 * 1024, 12000)).toBe(0);
  });

  it('formats bytes, percent and rate', () => {
    expect(formatRate(110 * 1024 * 1024)).toBe('110 MiB/s');
    expect(formatTransfer(1024 ** 3, 4 * 1024 ** 3, 2 * 1024 ** 2)).toBe('1.0 GiB / 4.0 GiB (25%), 2.0 MiB/s');
    expect(formatTransfer(10, undefined, 0)).toBe('10 B, 0 B/s');
  });

  it('updates in place on a terminal, prints a line every 5 s otherwise, nothing in JSON mode', () => {
    let t = 0;
    const tty = fakeStream(true);
    const p = progressLine(false, tty.stream, () => t);
    t = 1000;
    p.update('a');
    t = 1100;
    p.update('b'); // throttled
    t = 1300;
    p.update('c');
    p.line('done');
    expect(tty.out).toEqual(['\r\x1b[K  a', '\r\x1b[K  c', '\r\x1b[K', '  done\n']);

    const log = fakeStream(false);
    const q = progressLine(false, log.stream, () => t);
    t = 10_000;
    q.update('x');
    t = 12_000;
    q.update('y');
    t = 15_001;
    q.update('z');
    expect(log.out).toEqual(['  x\n', '  z\n']);

    const json = fakeStream(true);
    const r = progressLine(true, json.stream, () => t);
    r.update('x');
    r.line('y');
    expect(json.out).toEqual([]);
  });
});
