import { describe, expect, it } from 'vitest';
import { spawnDaemon } from './daemon.js';

describe('spawnDaemon', () => {
  it('runs until killed and reports how it ended', async () => {
    const d = spawnDaemon({ argv: ['sleep', '30'] });
    expect(d.pid).toBeGreaterThan(0);
    expect(d.hasExited()).toBe(false);
    expect(d.kill()).toBe(true);
    expect(await d.exited).toMatchObject({ code: null, signal: 'SIGTERM' });
    expect(d.hasExited()).toBe(true);
    expect(d.kill()).toBe(false);
  });

  it('keeps the tail of stderr for error messages', async () => {
    const d = spawnDaemon({ argv: [process.execPath, '-e', "process.stderr.write('boom\\n'); process.exit(3)"] });
    const exit = await d.exited;
    expect(exit.code).toBe(3);
    expect(exit.stderrTail).toBe('boom\n');
  });

  it('fails up front for a missing program', () => {
    expect(() => spawnDaemon({ argv: ['vmforge-no-such-program'] })).toThrow(expect.objectContaining({ code: 'MISSING_TOOL' }));
  });
});
