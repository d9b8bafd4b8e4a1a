import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ZodError } from 'zod';
import { VmforgeError } from '../errors.js';
import { configSchema, type Config, type ConfigFile } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/vmforge/config.yaml';

/**
 * Loads the config. An explicit path (--config or VMFORGE_CONFIG) must exist; the default path may be absent,
 * in which case the defaults apply.
 */
export async function loadConfig(explicitPath?: string): Promise<Config> {
  const path = explicitPath ?? process.env.VMFORGE_CONFIG ?? DEFAULT_CONFIG_PATH;
  const mustExist = explicitPath !== undefined || process.env.VMFORGE_CONFIG !== undefined;
  let text: string | null = null;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || mustExist) {
      throw new VmforgeError('INVALID_CONFIG', `cannot read config file ${path}: ${(e as Error).message}`, {
        hint: mustExist ? 'check the --config path (or VMFORGE_CONFIG)' : undefined,
      });
    }
  }
  return parseConfig(text, text === null ? null : path);
}

export function parseConfig(text: string | null, source: string | null): Config {
  let raw: unknown = {};
  if (text !== null) {
    try {
      raw = parseYaml(text) ?? {};
    } catch (e) {
      const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}` : '';
      throw new VmforgeError('INVALID_CONFIG', `${source}: not valid YAML${where}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  let file: ConfigFile;
  try {
    file = configSchema.parse(raw);
  } catch (e) {
    if (e instanceof ZodError) {
      const issues = e.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(top level)'}: ${describeIssue(i)}`);
      throw new VmforgeError('INVALID_CONFIG', `${source ?? 'config'} is invalid:\n${issues.join('\n')}`, {
        hint: 'fix the fields above; see docs/config.md for every field and its default',
      });
    }
    throw e;
  }
  return resolveConfig(file, source);
}

function describeIssue(i: import('zod').ZodIssue): string {
  switch (i.code) {
    case 'invalid_type':
      return `expected ${i.expected}, got ${i.received}`;
    case 'unrecognized_keys':
      return `unknown field(s) ${i.keys.map((k) => `'${k}'`).join(', ')}`;
    case 'invalid_enum_value':
      return `expected one of ${i.options.map((o) => `'${String(o)}'`).join(', ')}, got '${String(i.received)}'`;
    case 'invalid_string':
      return `expected ${i.message}`;
    default:
      return i.message;
  }
}

export function resolveConfig(file: ConfigFile, source: string | null): Config {
  const stateDir = file.stateDir;
  return {
    ...file,
    storage: { ...file.storage, dir: file.storage.dir ?? join(stateDir, 'disks') },
    bundles: { ...file.bundles, dir: file.bundles.dir ?? join(stateDir, 'bundles') },
    source,
    dbPath: join(stateDir, 'vmforge.db'),
    runDir: join(stateDir, 'run'),
    consoleDir: join(stateDir, 'console'),
  };
}
