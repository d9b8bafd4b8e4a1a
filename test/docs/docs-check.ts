/**
 * Checks of the user docs (README.md, CONTRIBUTING.md, docs/*.md), run by docs-check.test.ts in the unit suite:
 * relative links resolve (files and GitHub-style #anchors), every `vmforge …` command shown names a real
 * command and only options it knows (checked against the real commander tree, nothing is run), and no words
 * about how the work was organised. Pure: files come in as text, existence of other files through `exists`.
 */
import { posix } from 'node:path';
import type { Command, Option } from 'commander';

/** Markdown files by repository-relative path (posix separators). */
export type DocFiles = ReadonlyMap<string, string>;

export interface Problem {
  file: string;
  line: number;
  message: string;
}

const FENCE = /^\s*(```|~~~)/;

/** Lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let inFence = false;
  text.split('\n').forEach((t, i) => {
    if (FENCE.test(t)) inFence = !inFence;
    else if (!inFence) out.push({ line: i + 1, text: t });
  });
  return out;
}

/** Inline code spans removed (a link shown as code is not a link). */
function withoutCode(line: string): string {
  return line.replace(/`[^`]*`/g, '``');
}

/** GitHub's anchor for a heading: rendered text, lower case, punctuation dropped, spaces to dashes. */
export function slugOf(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** Every anchor of a markdown file, duplicates numbered as GitHub does (`x`, `x-1`, `x-2`). */
export function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text: t } of proseLines(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(t);
    if (!m) continue;
    const base = slugOf(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Relative links and their anchors: the target file exists, and a #fragment is a heading of that markdown file. */
export function checkLinks(files: DocFiles, exists: (repoPath: string) => boolean): Problem[] {
  const problems: Problem[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (p: string) => {
    if (!anchorCache.has(p)) anchorCache.set(p, anchorsOf(files.get(p) ?? ''));
    return anchorCache.get(p)!;
  };
  for (const [file, text] of files) {
    for (const { line, text: t } of proseLines(text)) {
      for (const m of withoutCode(t).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
        const [path, fragment] = target.split('#', 2) as [string, string | undefined];
        const resolved = path === '' ? file : posix.normalize(posix.join(posix.dirname(file), decodeURI(path)));
        if (resolved.startsWith('../') || !(files.has(resolved) || exists(resolved))) {
          problems.push({ file, line, message: `link to ${target}: ${resolved} does not exist` });
          continue;
        }
        if (fragment === undefined) continue;
        if (!resolved.endsWith('.md') || !files.has(resolved)) {
          problems.push({ file, line, message: `link to ${target}: anchors are checked in the docs' markdown files only` });
        } else if (!anchors(resolved).has(fragment)) {
          problems.push({ file, line, message: `link to ${target}: ${resolved} has no heading with anchor #${fragment}` });
        }
      }
    }
  }
  return problems;
}

const PROCESS_WORDS: { re: RegExp; what: string }[] = [
  { re: /\bissue\s*#?\s*\d+/i, what: 'an issue number' },
  { re: /\bissue #/i, what: 'an issue reference' },
  { re: /(^|[\s(])#\d+\b/, what: 'an issue reference (#N)' },
  { re: /\bthis session\b/i, what: '"this session"' },
  { re: /\bstop \d+\b/i, what: '"stop N"' },
  { re: /\bthe lead\b/i, what: '"the lead"' },
  { re: /(?<![-\w])helpers?\b/i, what: '"helper"' },
];

/** Words about how the work was organised, which users have no use for. Code blocks included. */
export function checkWords(files: DocFiles): Problem[] {
  const problems: Problem[] = [];
  for (const [file, text] of files) {
    text.split('\n').forEach((t, i) => {
      for (const { re, what } of PROCESS_WORDS) {
        if (re.test(t)) problems.push({ file, line: i + 1, message: `${what}: ${t.trim()}` });
      }
    });
  }
  return problems;
}

/** `vmforge …` command lines: in code blocks (after an optional `$ `/`# ` prompt, `\` continuations joined) and in inline code. */
export function commandLines(text: string): { line: number; command: string }[] {
  const out: { line: number; command: string }[] = [];
  const lines = text.split('\n');
  let inFence = false;
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!;
    if (FENCE.test(t)) {
      inFence = !inFence;
      continue;
    }
    if (inFence) {
      const start = i;
      let joined = t;
      while (joined.endsWith('\\') && i + 1 < lines.length) joined = `${joined.slice(0, -1)} ${lines[++i]!.trim()}`;
      const m = /^\s*(?:[$#]\s+)?(?:sudo\s+)?(vmforge\s.*|vmforge)$/.exec(joined);
      if (m) out.push({ line: start + 1, command: m[1]! });
      continue;
    }
    for (const m of t.matchAll(/`(vmforge(?:\s[^`]*)?)`/g)) out.push({ line: i + 1, command: m[1]! });
  }
  return out;
}

/** Words of a shown command, up to where the shell would end it; `|` alternatives split into segments. */
function segmentsOf(command: string): string[][] {
  const cut = command.split(/\s(?:#|&&|;|>|2>)\s?|\$\(/)[0]!;
  return cut
    .split(/\s*\\?\|\s*/)
    .map((seg) =>
      seg
        .replace(/[[\]]/g, ' ')
        .split(/\s+/)
        .map((w) => w.replace(/^['"]|['"]$/g, ''))
        .filter((w) => w !== '' && w !== '...' && w !== '…'),
    )
    .filter((seg) => seg.length > 0);
}

function findOption(cmd: Command, flag: string): Option | undefined {
  return cmd.options.find((o) => o.long === flag || o.short === flag);
}

function isHelp(flag: string): boolean {
  return flag === '-h' || flag === '--help';
}

/**
 * Problems of one shown command line against the program: unknown (sub)commands, options the command does not
 * know. Words after the command path are its arguments; an option that takes a value consumes the next word.
 */
export function checkCommand(program: Command, command: string): string[] {
  const problems: string[] = [];
  const segments = segmentsOf(command);
  const first = segments[0];
  if (!first || first[0] !== 'vmforge') return [`does not start with vmforge: ${command}`];
  let cmd = program;
  let parent: Command | undefined;
  const checkWords = (words: string[], descend: boolean) => {
    let descending = descend;
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      if (w.startsWith('-') && w.length > 1) {
        descending = false;
        const flag = w.split('=')[0]!;
        if (isHelp(flag)) continue;
        const opt = findOption(cmd, flag);
        if (!opt) {
          problems.push(`vmforge ${pathOf(cmd)}: unknown option ${flag}`);
        } else if (opt.required && !w.includes('=')) {
          i++; // its value
        }
        continue;
      }
      if (!descending) continue;
      const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
      if (sub) {
        parent = cmd;
        cmd = sub;
      } else if (w === 'help' && cmd.commands.length > 0) {
        descending = false;
      } else {
        if (cmd.commands.length > 0 && cmd.registeredArguments.length === 0) {
          problems.push(`vmforge ${pathOf(cmd)}: unknown command ${w}`);
        }
        descending = false;
      }
    }
  };
  checkWords(first.slice(1), true);
  for (const seg of segments.slice(1)) {
    const sibling = parent?.commands.find((c) => c.name() === seg[0]);
    if (sibling) {
      cmd = sibling;
      checkWords(seg.slice(1), true);
    } else {
      // a value alternative (`ext4|xfs`) or an option alternative (`[--fill | --clear]`) of the same command
      checkWords(seg, false);
    }
  }
  return problems;
}

function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ') || '(top level)';
}

export function checkCommands(files: DocFiles, program: Command): Problem[] {
  const problems: Problem[] = [];
  for (const [file, text] of files) {
    for (const { line, command } of commandLines(text)) {
      for (const message of checkCommand(program, command)) problems.push({ file, line, message });
    }
  }
  return problems;
}
