/**
 * SELinux. Files unpacked from a bundle have no (or the template's) security labels, and an enforcing guest with
 * wrong labels does not boot. The default relabels at first boot (/.autorelabel: selinux-autorelabel relabels the
 * whole filesystem and reboots once) and keeps the policy enforcing; permissive and disabled only change SELINUX=.
 */
import { invalidInput } from '../../errors.js';
import type { FileEdit } from '../model/spec.js';
import { joinLines, splitLines } from './text.js';

export const SELINUX_MODES = ['relabel', 'permissive', 'disabled'] as const;
export type SelinuxMode = (typeof SELINUX_MODES)[number];
export const SELINUX_CONFIG = '/etc/selinux/config';

export function parseSelinuxMode(text: string): SelinuxMode {
  const mode = SELINUX_MODES.find((m) => m === text);
  if (mode === undefined) throw invalidInput(`SELinux mode '${text}' is not one of ${SELINUX_MODES.join(', ')}`, `use ${SELINUX_MODES.join(', ')}`);
  return mode;
}

/** Nothing when the guest has no /etc/selinux/config: there is no policy to relabel for. */
export function selinuxEdits(mode: SelinuxMode, config: string | null): FileEdit[] {
  if (config === null) return [];
  if (mode === 'relabel') return [{ kind: 'write', path: '/.autorelabel', content: '' }];
  const lines = splitLines(config);
  const i = lines.findIndex((l) => /^\s*SELINUX=/.test(l));
  if (i === -1) lines.push(`SELINUX=${mode}`);
  else lines[i] = `SELINUX=${mode}`;
  return [{ kind: 'write', path: SELINUX_CONFIG, content: joinLines(lines) }];
}
