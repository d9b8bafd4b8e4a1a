import { describe, expect, it } from 'vitest';
import { GiB, MiB } from '../units.js';
import { checkDomainName, checkDomainPid } from './check-domain.js';
import { latencyVerdict, spaceVerdict, summarize, type CheckResult } from './check-report.js';

const r = (status: CheckResult['status']): CheckResult => ({ id: status, title: status, status, detail: '', ms: 1 });

describe('host check verdicts', () => {
  it('exits 0 with warnings, 1 with any failure', () => {
    expect(summarize([r('ok'), r('warn'), r('warn')])).toEqual({ ok: 1, warn: 2, fail: 0, exitCode: 0 });
    expect(summarize([r('ok'), r('fail')])).toEqual({ ok: 1, warn: 0, fail: 1, exitCode: 1 });
    expect(summarize([]).exitCode).toBe(0);
  });

  it('free space: ✗ below 512 MiB, ⚠ below the default disk size, ✓ above', () => {
    expect(spaceVerdict(100 * MiB, { warnBelow: 4 * GiB }).status).toBe('fail');
    expect(spaceVerdict(512 * MiB - 1, { warnBelow: 4 * GiB }).status).toBe('fail');
    expect(spaceVerdict(512 * MiB, { warnBelow: 4 * GiB })).toEqual({ status: 'warn', detail: '512 MiB free (less than 4.0 GiB, the default disk size)' });
    expect(spaceVerdict(4 * GiB, { warnBelow: 4 * GiB })).toEqual({ status: 'ok', detail: '4.0 GiB free' });
  });

  it('libvirt calls: ✓ under 2 s, ⚠ from 2 s with the likely cause when one is known', () => {
    expect(latencyVerdict(1500, 'a define')).toEqual({ status: 'ok', detail: 'a define took 1.5 s' });
    expect(latencyVerdict(1999, 'a define').status).toBe('ok');
    const slow = latencyVerdict(52_300, 'a define', '/dev/kvm is half-usable');
    expect(slow).toEqual({ status: 'warn', detail: 'a define took 52.3 s (more than 2 s)', fix: '/dev/kvm is half-usable' });
    expect(latencyVerdict(2000, 'x').fix).toMatch(/libvirtd\.log/);
  });

  it("check domains carry their process's pid; other names are not ours", () => {
    const name = checkDomainName(4242, 'a1b2');
    expect(name).toBe('vmforge-hostcheck-4242-a1b2');
    expect(checkDomainPid(name)).toBe(4242);
    expect(checkDomainPid('vmforge-hostcheck-x-a1')).toBeNull();
    expect(checkDomainPid('web1')).toBeNull();
    expect(checkDomainPid('vmforge-hostcheck-12-a1b2-evil')).toBeNull();
  });
});
