import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeProgram } from '../../src/cli/program.js';
import { anchorsOf, checkCommand, checkCommands, checkLinks, checkWords, commandLines, slugOf, type DocFiles } from './docs-check.js';

const REPO = resolve(import.meta.dirname, '../..');

/** The user docs: README.md, CONTRIBUTING.md and every page of docs/. */
function repoDocs(): DocFiles {
  const names = ['README.md', 'CONTRIBUTING.md', ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  return new Map(names.map((n) => [n, readFileSync(join(REPO, n), 'utf8')]));
}

const show = (ps: { file: string; line: number; message: string }[]) => ps.map((p) => `${p.file}:${p.line}: ${p.message}`);

describe('the docs', () => {
  const files = repoDocs();

  it('link only to files and headings that exist', () => {
    expect(show(checkLinks(files, (p) => existsSync(join(REPO, p))))).toEqual([]);
  });

  it('show only vmforge commands and options the CLI has', { timeout: 60_000 }, async () => {
    const program = await makeProgram();
    const shown = [...files.values()].flatMap((t) => commandLines(t));
    expect(shown.length).toBeGreaterThan(50);
    expect(show(checkCommands(files, program))).toEqual([]);
  });

  it('say nothing about issues or how the work was organised', () => {
    expect(show(checkWords(files))).toEqual([]);
  });
});

describe('the docs checker', () => {
  const fixture: DocFiles = new Map([
    [
      'README.md',
      [
        '# Tool',
        'See [build](docs/build.md#the-steps-in-order), [storage](docs/build.md#lvm--thin-pools), [x](docs/build.md#missing),',
        '[gone](docs/gone.md), [script](scripts/test.sh), [web](https://example.org/a#b), `[not a link](nowhere.md)`.',
        '',
        '```sh',
        '$ vmforge vm build web1 --bundle b --disk 4G --wait',
        'vmforge vm build web1 --bundel b',
        '[in code](nowhere.md)',
        '```',
        'Run `vmforge vm lst` or `vmforge cache keys [--fill | --clear]` or `vmforge vm list | show NAME | destroy NAME`.',
        'Done in issue #5 this session; the lead merged it (#3). PKCS#1 keys, qemu-bridge-helper.',
      ].join('\n'),
    ],
    ['docs/build.md', '# Build\n## The steps, in order\n## LVM & thin pools\n```\n# not a heading\n```\n## Build\n'],
  ]);

  it('makes GitHub anchors', () => {
    expect(slugOf('`vm build --hypervisor xen`')).toBe('vm-build---hypervisor-xen');
    expect(slugOf('4. The steps in order')).toBe('4-the-steps-in-order');
    expect(slugOf('Golden format 2 and [fewer](x.md) libvirt_calls!')).toBe('golden-format-2-and-fewer-libvirt_calls');
    expect([...anchorsOf(fixture.get('docs/build.md')!)]).toEqual(['build', 'the-steps-in-order', 'lvm--thin-pools', 'build-1']);
  });

  it('finds a missing file and a missing anchor, and nothing else', () => {
    const problems = checkLinks(fixture, (p) => p === 'scripts/test.sh');
    expect(problems.map((p) => p.message)).toEqual([
      'link to docs/build.md#missing: docs/build.md has no heading with anchor #missing',
      'link to docs/gone.md: docs/gone.md does not exist',
    ]);
  });

  it('finds an unknown option and an unknown command, and accepts alternatives', { timeout: 60_000 }, async () => {
    const program = await makeProgram();
    expect(commandLines(fixture.get('README.md')!).map((c) => c.command)).toEqual([
      'vmforge vm build web1 --bundle b --disk 4G --wait',
      'vmforge vm build web1 --bundel b',
      'vmforge vm lst',
      'vmforge cache keys [--fill | --clear]',
      'vmforge vm list | show NAME | destroy NAME',
    ]);
    expect(checkCommands(fixture, program).map((p) => `${p.line} ${p.message}`)).toEqual([
      '7 vmforge vm build: unknown option --bundel',
      '10 vmforge vm: unknown command lst',
    ]);
    expect(checkCommand(program, 'vmforge vm list | show NAME | destroy NAME --keep-disk --bogus')).toEqual([
      'vmforge vm destroy: unknown option --bogus',
    ]);
    expect(checkCommand(program, 'vmforge --version')).toEqual([]);
    expect(checkCommand(program, 'vmforge nosuch thing')).toEqual(['vmforge (top level): unknown command nosuch']);
  });

  it('finds issue numbers and process words', () => {
    expect(checkWords(fixture).map((p) => p.message.split(':')[0])).toEqual([
      'an issue number',
      'an issue reference',
      'an issue reference (#N)',
      '"this session"',
      '"the lead"',
    ]);
  });
});
