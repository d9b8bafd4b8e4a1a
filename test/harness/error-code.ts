import { VmforgeError } from '../../src/errors.js';

/** The code of the VmforgeError `f` throws, or undefined when it returns; any other exception is rethrown. */
export function errorCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof VmforgeError) return e.code;
    throw e;
  }
  return undefined;
}
