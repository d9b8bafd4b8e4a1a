import { invalidInput } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses '512M', '4G', '4GiB', '1024' (bytes) into bytes. Rejects zero, negatives and fractions of a byte. */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw invalidInput(`${what}: '${text}' is not a size`, `use a number with a unit, like 512M or 4G`);
  const value = Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? 1);
  if (!Number.isFinite(value) || value > 2 ** 53) throw invalidInput(`${what}: '${text}' is too large`);
  return Math.floor(value);
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
