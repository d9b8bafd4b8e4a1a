/**
 * The little argv reading the entry does before commander is loaded (commander still parses argv in full).
 * Program options come before the command (enablePositionalOptions): only -c/--config takes a value.
 */

/** True when argv asks for the program's version: -V/--version before any command, as commander reads it. */
export function wantsVersion(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '-V' || a === '--version') return true;
    if (a === '-c' || a === '--config') i++;
    else if (!a.startsWith('--config=')) return false;
  }
  return false;
}

/**
 * The top-level command argv names, or undefined when there is none or it follows an option this scan does
 * not know (commander then reports that with the whole command tree loaded).
 */
export function commandNamed(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '-c' || a === '--config') i++;
    else if (a.startsWith('--config=') || a === '-h' || a === '--help') continue;
    else return a.startsWith('-') ? undefined : a;
  }
  return undefined;
}
