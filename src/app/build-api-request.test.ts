import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { VmforgeError } from '../errors.js';
import { buildInputFromApi } from './build-api-request.js';

const config = parseConfig('stateDir: /var/tmp/api-unit-state\n', '/dev/null');

describe('buildInputFromApi', () => {
  it('turns API sizes into the sizes the build parses, and options apart', () => {
    const { request, options } = buildInputFromApi(
      { name: 'web1', bundle: 'debian-bookworm', memoryMiB: 512, diskBytes: 3 * 2 ** 30, swapBytes: 0, nic: 'none', start: false, clone: 'qcow2', sshKeys: ['ssh-ed25519 AAAA k'] },
      config,
    );
    expect(request).toMatchObject({ name: 'web1', memory: '512M', disk: String(3 * 2 ** 30), swap: '0', net: 'none', start: false, force: false });
    expect(options).toEqual({ wait: false, clone: 'qcow2', sshKeys: ['ssh-ed25519 AAAA k'] });
  });

  it("refuses what the build's own checks refuse, naming the request field", () => {
    let err: unknown;
    try {
      buildInputFromApi({ name: 'web1', bundle: 'b', diskBytes: 2 ** 30, swapBytes: 2 ** 31 }, config);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VmforgeError);
    expect((err as VmforgeError).field).toBe('swapBytes');
    expect((err as VmforgeError).hint).toMatch(/swap smaller/);
  });

  it('refuses a private key or a line that is not a public key, naming sshKeys', () => {
    for (const key of ['-----BEGIN OPENSSH PRIVATE KEY-----', 'ssh-ed25519 AAAA k\nssh-rsa BBBB j', 'hello']) {
      let err: unknown;
      try {
        buildInputFromApi({ name: 'web1', bundle: 'b', sshKeys: ['ssh-ed25519 AAAA ok', key] }, config);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VmforgeError);
      expect((err as VmforgeError).field).toBe('sshKeys');
      expect((err as VmforgeError).message).toMatch(/^sshKeys\[1\] /);
    }
  });
});
