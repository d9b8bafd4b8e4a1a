/** cloud-init, when a template has it, would replace vmforge's network configuration with its own at first boot. */
import type { FileEdit } from '../model/spec.js';

export const CLOUD_DIR = '/etc/cloud';

/**
 * Without a datasource, cloud-init falls back to DHCP on the first NIC and rewrites netplan/ifcfg/keyfiles: its
 * documented switch turns that part off and leaves the rest of cloud-init alone.
 */
export function cloudInitNetworkEdits(cloudDir: readonly string[]): FileEdit[] {
  if (!cloudDir.includes('cloud.cfg')) return [];
  return [
    { kind: 'mkdir', path: `${CLOUD_DIR}/cloud.cfg.d` },
    {
      kind: 'write',
      path: `${CLOUD_DIR}/cloud.cfg.d/99-vmforge-disable-network-config.cfg`,
      content: '# Written by vmforge: the network is configured by vmforge, not cloud-init.\nnetwork: {config: disabled}\n',
    },
  ];
}
