/**
 * The throwaway domain `host check` defines and undefines to time libvirt's define path (XML validation against
 * QEMU's capabilities): no disk, no NIC, never started. Its name carries the checking process's pid so a check
 * killed in between can be swept by the next one.
 */
export const CHECK_DOMAIN_PREFIX = 'vmforge-hostcheck-';

export function checkDomainName(pid: number, suffixHex: string): string {
  return `${CHECK_DOMAIN_PREFIX}${pid}-${suffixHex}`;
}

/** The pid in a check domain's name, or null when the name is not one of ours. */
export function checkDomainPid(name: string): number | null {
  const m = new RegExp(`^${CHECK_DOMAIN_PREFIX}(\\d+)-[0-9a-f]+$`).exec(name);
  return m ? Number(m[1]) : null;
}

export function checkDomainXml(name: string, uuid: string, type: 'qemu' | 'kvm'): string {
  return `<domain type='${type}'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <title>vmforge host check (defined and removed at once)</title>
  <memory unit='MiB'>16</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <devices/>
</domain>
`;
}
