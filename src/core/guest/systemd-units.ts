/** Enabling systemd units by making the links `systemctl enable` would make (no systemctl runs in the guest). */
import type { FileEdit } from '../model/spec.js';

const ETC_UNITS = '/etc/systemd/system';

/** `unitDir` is where the guest's packages put units: /lib/systemd/system on Debian, /usr/lib/systemd/system elsewhere. */
export function enableUnit(unitDir: string, unit: string, wantedBy: string): FileEdit[] {
  const wants = `${ETC_UNITS}/${wantedBy}.wants`;
  return [
    { kind: 'mkdir', path: wants },
    { kind: 'symlink', path: `${wants}/${unit}`, target: `${unitDir}/${unit}` },
  ];
}

export function aliasUnit(unitDir: string, unit: string, alias: string): FileEdit {
  return { kind: 'symlink', path: `${ETC_UNITS}/${alias}`, target: `${unitDir}/${unit}` };
}

/**
 * A login prompt on the serial console, which is what `vmforge build` waits for. systemd's getty generator would
 * start it for the last console= too; the explicit link also covers a template whose generator is masked.
 */
export function serialGettyEdits(unitDir: string): FileEdit[] {
  const wants = `${ETC_UNITS}/getty.target.wants`;
  return [
    { kind: 'mkdir', path: wants },
    { kind: 'symlink', path: `${wants}/serial-getty@ttyS0.service`, target: `${unitDir}/serial-getty@.service` },
  ];
}
