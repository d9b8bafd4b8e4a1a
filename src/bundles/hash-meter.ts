/**
 * A pass-through stream that hashes (sha256) and counts what flows through it, reporting progress every so many
 * bytes: how a bundle's compressed bytes are verified in the same read that feeds the decompressor.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

export interface HashingMeter {
  stream: Transform;
  bytes(): number;
  /** Hex sha256 of everything that went through; call once, after the stream ended. */
  digest(): string;
}

export function hashingMeter(onProgress: ((bytes: number) => void) | undefined, everyBytes: number): HashingMeter {
  const hash = createHash('sha256');
  let bytes = 0;
  let lastReport = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes - lastReport >= everyBytes) {
        lastReport = bytes;
        onProgress?.(bytes);
      }
      cb(null, chunk);
    },
  });
  return { stream, bytes: () => bytes, digest: () => hash.digest('hex') };
}
