/**
 * A VM's SSH host keys, made on the host so their fingerprints are known before the VM first boots (`vm show`,
 * `vm known-hosts`). They are made with node:crypto, not ssh-keygen: no child process, and generateKeyPair runs
 * on libuv's thread pool, so a build starts them early and only waits for them in guest.configure. RSA 3072
 * takes 0.1 to over 1 s, by luck of the prime search, so the RSA key comes from the pool (host-key-pool.ts)
 * when it has one. The files are what
 * `ssh-keygen -m PEM` writes: Ed25519 in OpenSSH's own format, ECDSA as SEC1 PEM and RSA as PKCS#1 PEM, which
 * every OpenSSH reads (RHEL 6's 5.3 included; it predates the OpenSSH format and Ed25519).
 *
 * A GeneratedHostKey's `privateKey` is not enumerable: JSON.stringify (--json output, the operations log),
 * object spread and util.inspect leave it out, so passing a key where a StoredHostKey is expected cannot leak it.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { HOST_KEY_TYPES, storedHostKey, type HostKeyType, type StoredHostKey } from '../../core/ssh/host-keys.js';
import { ecdsaP256PublicBlob, ed25519PublicBlob, opensshEd25519PrivateKey, publicKeyLine, rsaPublicBlob } from '../../core/ssh/openssh-format.js';
import { invalidInput, VmforgeError } from '../../errors.js';
import { claimPooledKey, makeRsaPem, POOLED_RSA_BITS } from './host-key-pool.js';

export interface GeneratedHostKey extends StoredHostKey {
  /** The private key file (OpenSSH format for Ed25519, PEM for ECDSA/RSA). Non-enumerable; see above. */
  readonly privateKey: Buffer;
}

const generateKeyPairAsync = promisify(generateKeyPair);

/** Makes one key pair of `type` with the .pub comment `comment` (checked by the caller). */
export type HostKeyMaker = (type: HostKeyType, comment: string) => Promise<GeneratedHostKey>;

/** The HostKeyMaker of vmforge: node:crypto. */
async function makeKey(type: HostKeyType, comment: string): Promise<GeneratedHostKey> {
  switch (type) {
    case 'ed25519': {
      const { publicKey, privateKey } = await generateKeyPairAsync('ed25519');
      const pub = rawEd25519Public(publicKey);
      // PKCS#8 of an Ed25519 key is a fixed 16-byte header, then the 32-byte seed.
      const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
      try {
        if (pkcs8.length !== 48) throw new VmforgeError('INTERNAL', `unexpected Ed25519 PKCS#8 length ${pkcs8.length}`);
        const file = opensshEd25519PrivateKey({ seed: pkcs8.subarray(16), publicKey: pub, comment, checkInt: randomBytes(4).readUInt32BE(0) });
        return withPrivateKey(storedHostKey(type, publicKeyLine(ed25519PublicBlob(pub), comment)), Buffer.from(file, 'ascii'));
      } finally {
        pkcs8.fill(0);
      }
    }
    case 'ecdsa': {
      const { publicKey, privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
      const jwk = publicKey.export({ format: 'jwk' });
      const blob = ecdsaP256PublicBlob(fromBase64Url(jwk.x), fromBase64Url(jwk.y));
      const pem = privateKey.export({ format: 'pem', type: 'sec1' });
      return withPrivateKey(storedHostKey(type, publicKeyLine(blob, comment)), Buffer.from(pem));
    }
    case 'rsa':
      return rsaHostKeyFromPem(await makeRsaPem(), comment);
  }
}

/**
 * The host key of an RSA private key in PKCS#1 PEM (made here or taken from the pool, host-key-pool.ts); the
 * PEM becomes the key's private half. Throws on anything but an RSA key of the pooled size.
 */
export function rsaHostKeyFromPem(pem: Buffer, comment: string): GeneratedHostKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'rsa' || privateKey.asymmetricKeyDetails?.modulusLength !== POOLED_RSA_BITS) {
    throw new VmforgeError('INTERNAL', `not an RSA ${POOLED_RSA_BITS} private key`);
  }
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const blob = rsaPublicBlob(fromBase64Url(jwk.e), fromBase64Url(jwk.n));
  return withPrivateKey(storedHostKey('rsa', publicKeyLine(blob, comment)), pem);
}

function rawEd25519Public(key: KeyObject): Uint8Array {
  // SPKI of an Ed25519 key is a fixed 12-byte header, then the 32-byte key.
  const spki = key.export({ format: 'der', type: 'spki' });
  if (spki.length !== 44) throw new VmforgeError('INTERNAL', `unexpected Ed25519 SPKI length ${spki.length}`);
  return new Uint8Array(spki.subarray(12));
}

function fromBase64Url(s: string | undefined): Uint8Array {
  if (!s) throw new VmforgeError('INTERNAL', 'node:crypto exported a public key without its numbers');
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

/**
 * At most this many key pairs are being made at once in this process. generateKeyPair holds a libuv pool thread
 * (4 by default, shared with every fs call) for the whole RSA prime search; `vm build --count 20` must not starve
 * its own file I/O, and the host has few cores anyway.
 */
const MAX_CONCURRENT = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function limited<T>(fn: () => Promise<T>): Promise<T> {
  // A finishing job hands its slot straight to the next waiter, so no newcomer can slip in between.
  if (running >= MAX_CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

export interface HostKeyOptions {
  /** The .pub comment, 'root@NAME' (what the guest's own ssh-keygen -A would write). */
  comment: string;
  /** Default: ed25519, ecdsa, rsa. */
  types?: readonly HostKeyType[];
  /** The RSA key pool (host-key-pool.ts) to take the RSA key from before making one. */
  poolDir?: string;
}

function checkOptions(opts: HostKeyOptions): readonly HostKeyType[] {
  const types = opts.types ?? HOST_KEY_TYPES;
  if (types.length === 0 || new Set(types).size !== types.length) throw invalidInput(`host key types ${JSON.stringify(types)} must be a list without repeats`);
  // The comment ends up in known_hosts-adjacent output and guest files: one printable token.
  if (!/^[\x21-\x7e]{1,255}$/.test(opts.comment)) throw invalidInput(`SSH host key comment ${JSON.stringify(opts.comment)} must be one printable word`);
  return types;
}

/**
 * Host keys being made in the background (startHostKeys). `take` hands over the keys of the types the guest
 * turns out to need and wipes the others; `discard` wipes them all, for a build that will not get that far.
 * Each key's private half is wiped once it is known nobody will take it, whenever it arrives.
 */
export interface PendingHostKeys {
  take(types: readonly HostKeyType[], signal?: AbortSignal): Promise<GeneratedHostKey[]>;
  discard(): void;
}

/**
 * Starts making keys of `types` (default all three) now, without waiting. A failure is held until `take`,
 * which throws it as a VmforgeError; a build that never takes its keys never sees it (and never crashes on an
 * unhandled rejection). `make` is node:crypto but for tests of failures.
 */
export function startHostKeys(opts: HostKeyOptions, make: HostKeyMaker = makeKey): PendingHostKeys {
  const types = checkOptions(opts);
  const started = new Map<HostKeyType, Promise<GeneratedHostKey>>();
  for (const type of types) {
    const p = type === 'rsa' && opts.poolDir ? pooledOrMade(opts.poolDir, opts.comment, make) : limited(() => make(type, opts.comment));
    p.catch(() => {}); // held for take(); see above
    started.set(type, p);
  }
  let done = false;
  const wipeWhenMade = (p: Promise<GeneratedHostKey>) => void p.then((k) => wipeHostKeys([k]), () => {});
  return {
    async take(wanted, signal) {
      if (done) throw new VmforgeError('INTERNAL', 'the host keys were taken or discarded already');
      done = true;
      const missing = wanted.filter((t) => !started.has(t));
      if (missing.length) {
        for (const p of started.values()) wipeWhenMade(p);
        throw new VmforgeError('INTERNAL', `host keys of type ${missing.join(', ')} were not started`);
      }
      for (const [t, p] of started) if (!wanted.includes(t)) wipeWhenMade(p);
      const mine = wanted.map((t) => started.get(t) as Promise<GeneratedHostKey>);
      // Keys that arrive after a failure or abort are nobody's: wipe them then.
      const giveUp = () => mine.forEach(wipeWhenMade);
      try {
        return await untilAborted(Promise.all(mine), signal);
      } catch (e) {
        giveUp();
        if (e instanceof VmforgeError && e.code === 'CANCELLED') throw e;
        throw new VmforgeError('INTERNAL', `could not make the VM's SSH host keys: ${(e as Error).message}`, {
          cause: e,
          hint: 'build with --no-host-keys to have the guest make its own keys at first boot',
        });
      }
    },
    discard() {
      if (done) return;
      done = true;
      for (const p of started.values()) wipeWhenMade(p);
    },
  };
}

/** The RSA key from the pool when it has one (a damaged pool file is skipped: it left the pool anyway). */
async function pooledOrMade(poolDir: string, comment: string, make: HostKeyMaker): Promise<GeneratedHostKey> {
  for (;;) {
    const pem = await claimPooledKey(poolDir).catch(() => null); // an unreadable pool is an empty one
    if (!pem) return limited(() => make('rsa', comment));
    try {
      return rsaHostKeyFromPem(pem, comment);
    } catch {
      pem.fill(0);
    }
  }
}

/** Makes the keys and waits for them: startHostKeys(opts).take(all of them). */
export async function generateHostKeys(opts: HostKeyOptions & { signal?: AbortSignal }): Promise<{ keys: GeneratedHostKey[] }> {
  const types = checkOptions(opts);
  return { keys: await startHostKeys({ comment: opts.comment, types }).take(types, opts.signal) };
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new VmforgeError('CANCELLED', 'cancelled while making the SSH host keys'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new VmforgeError('CANCELLED', 'cancelled while making the SSH host keys'));
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Only what may be stored and shown: a fresh object per key, with no private half. */
export function publicHostKeys(keys: readonly StoredHostKey[]): StoredHostKey[] {
  return keys.map((k) => ({ type: k.type, publicKey: k.publicKey, fingerprint: k.fingerprint }));
}

/** Overwrites the private halves in memory once they are written into the guest. */
export function wipeHostKeys(keys: readonly GeneratedHostKey[]): void {
  for (const k of keys) k.privateKey.fill(0);
}

function withPrivateKey(stored: StoredHostKey, privateKey: Buffer): GeneratedHostKey {
  return Object.defineProperty({ ...stored }, 'privateKey', { value: privateKey, enumerable: false, writable: false, configurable: false }) as GeneratedHostKey;
}
