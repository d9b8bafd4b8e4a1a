/**
 * A strict reader for shell-variable files (ifcfg-*, /etc/sysconfig/network): initscripts source them with the
 * shell, NetworkManager's ifcfg-rh plugin reads them without one and documents the subset it understands
 * (nm-settings-ifcfg-rh(5)): one `KEY=VALUE` per line, blank lines and `#` comment lines, values unquoted, in
 * single quotes, or in double quotes with backslash escapes, and no expansion of any kind. A file that is
 * inside this subset means the same to both readers; anything else is refused here with the line that broke it,
 * so a test can compare this reading with what bash makes of the same file.
 */

/** Characters that mean something to the shell outside quotes (besides the quotes and backslash themselves). */
const SHELL_SPECIAL = new Set([...' \t$`|&;<>()*?[]~{}!#=']);

export interface ShellVarsReading {
  /** In file order; a later assignment of the same name replaces the earlier value (as in the shell). */
  vars: Map<string, string>;
}

export function readShellVarsStrictly(text: string, file = 'file'): ShellVarsReading {
  const vars = new Map<string, string>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    if (/^\s*(#.*)?$/.test(line)) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`${where}: not a KEY=VALUE line: ${JSON.stringify(line)}`);
    vars.set(m[1]!, readValue(m[2]!, where));
  });
  return { vars };
}

function readValue(raw: string, where: string): string {
  let out = '';
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`${where}: ${why} in value ${JSON.stringify(raw)}`);
  };
  while (i < raw.length) {
    const c = raw[i]!;
    if (c === "'") {
      const end = raw.indexOf("'", i + 1);
      if (end < 0) fail('unterminated single quote');
      out += raw.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= raw.length) fail('unterminated double quote');
        const d = raw[i]!;
        if (d === '"') break;
        if (d === '$' || d === '`') fail(`expansion (${d}) inside double quotes`);
        if (d === '\\') {
          const e = raw[i + 1];
          // Inside double quotes the shell removes a backslash only before these; elsewhere it stays.
          if (e !== undefined && '"\\$`'.includes(e)) {
            out += e;
            i += 2;
            continue;
          }
          fail('a backslash that does not escape " \\ $ or `');
        }
        out += d;
        i++;
      }
      i++;
    } else if (c === '\\') {
      const e = raw[i + 1];
      if (e === undefined || e === '\n') fail('a trailing backslash');
      out += e;
      i += 2;
    } else if (/\s/.test(c)) {
      // Whitespace ends the word: what follows would be a command run with the assignment in its environment.
      if (raw.slice(i).trim() !== '') fail('text after whitespace');
      break;
    } else if (SHELL_SPECIAL.has(c)) {
      fail(`unquoted '${c}'`);
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
