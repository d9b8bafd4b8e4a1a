/**
 * A separate process running one accelerator probe whose guest never prints (argv: URI TMPDIR), for the
 * killed-probe test: prints "running <domain>" once the transient domain runs, then waits to be killed.
 */
import { HostProcessRunner } from '../../src/exec/runner.js';
import { runAccelProbe } from '../../src/exec/host/accel-probe.js';

const [uri, tmpDir] = process.argv.slice(2);
await runAccelProbe(new HostProcessRunner(), {
  uri: uri as string,
  tmpDir: tmpDir as string,
  domainType: 'qemu',
  bootSector: 'silent',
  timeoutMs: 120_000,
  onRunning: (name) => process.stdout.write(`running ${name}\n`),
});
