/** Line and shell-assignment helpers shared by the guest adapters (config files are edited, not regenerated). */

/** Lines without the final newline's empty remainder. */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export function joinLines(lines: readonly string[]): string {
  return `${lines.join('\n')}\n`;
}

export function trimBlankLines(lines: string[]): string[] {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start]!.trim() === '') start++;
  while (end > start && lines[end - 1]!.trim() === '') end--;
  return lines.slice(start, end);
}

export function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

/** Index of the last `NAME=` line (the one a shell keeps), or -1. */
export function lastAssignment(lines: readonly string[], name: string): number {
  const re = new RegExp(`^\\s*(?:export\\s+)?${name}=`);
  for (let i = lines.length - 1; i >= 0; i--) if (re.test(lines[i]!)) return i;
  return -1;
}

export function setAssignment(lines: string[], name: string, value: string): void {
  const i = lastAssignment(lines, name);
  if (i === -1) lines.push(`${name}=${value}`);
  else lines[i] = `${name}=${value}`;
}

/** Splits `"a b" # c` into quote, value and tail. Null when the quote does not close on this line. */
export function parseShellValue(text: string): { quote: string; value: string; tail: string } | null {
  const quote = text[0];
  if (quote === '"') {
    for (let i = 1; i < text.length; i++) {
      if (text[i] === '\\') i++;
      else if (text[i] === '"') return { quote, value: text.slice(1, i), tail: text.slice(i + 1) };
    }
    return null;
  }
  if (quote === "'") {
    const end = text.indexOf("'", 1);
    return end === -1 ? null : { quote, value: text.slice(1, end), tail: text.slice(end + 1) };
  }
  const m = /^[^\s#;]*/.exec(text)!;
  if (m[0].endsWith('\\')) return null;
  return { quote: '', value: m[0], tail: text.slice(m[0].length) };
}

/**
 * Key=value files read by shell scripts (ifcfg, sysconfig). A managed key keeps the place of its first assignment
 * (so the file still reads like the template's), later assignments of it and `drop` keys go, and keys the file did
 * not have are appended in the given order. Comments and other keys stay where they were.
 */
export function rewriteShellVars(existing: string | null, values: ReadonlyArray<readonly [string, string]>, drop: readonly string[] = []): string {
  const wanted = new Map(values.map(([k, v]) => [k, v]));
  const dropped = new Set(drop);
  const done = new Set<string>();
  const out: string[] = [];
  for (const line of splitLines(existing ?? '')) {
    const key = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=/.exec(line)?.[1];
    if (key === undefined || (!wanted.has(key) && !dropped.has(key))) out.push(line);
    else if (wanted.has(key) && !done.has(key)) {
      out.push(`${key}=${wanted.get(key)!}`);
      done.add(key);
    }
  }
  const kept = trimBlankLines(out);
  for (const [k, v] of values) if (!done.has(k)) kept.push(`${k}=${v}`);
  return joinLines(kept);
}

/** Double-quotes a value for a shell-sourced file when it needs it. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@,+-]*$/.test(value) && value !== '' ? value : `"${value.replace(/(["\\$`])/g, '\\$1')}"`;
}
