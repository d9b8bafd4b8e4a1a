import { VmforgeError } from '../errors.js';

/**
 * Fault injection for tests: VMFORGE_FAULT="before:STEP_ID" or "after:STEP_ID" makes the pipeline fail at that
 * point; "pause:STEP_ID" stops the process (SIGSTOP to itself) just before that step, so a test can look at the
 * host mid-build and then let it go on with SIGCONT. Unset (normal use) it does nothing.
 */
export interface FaultPoint {
  when: 'before' | 'after' | 'pause';
  step: string;
}

export function parseFault(value: string | undefined): FaultPoint | null {
  if (!value) return null;
  const m = /^(before|after|pause):([a-z0-9.-]+)$/.exec(value);
  if (!m) throw new VmforgeError('INVALID_INPUT', `VMFORGE_FAULT='${value}' is not before:STEP, after:STEP or pause:STEP`);
  return { when: m[1] as FaultPoint['when'], step: m[2] as string };
}

export class InjectedFault extends VmforgeError {
  constructor(p: FaultPoint) {
    super('INTERNAL', `injected fault ${p.when} step '${p.step}'`);
  }
}
