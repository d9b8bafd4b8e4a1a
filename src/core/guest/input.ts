/** What every family adapter gets: the one VM's identity, network and credentials. */
import { invalidInput } from '../../errors.js';
import { validateDomainName, validateHostname } from '../names.js';
import { assertUuid } from '../disk/uuid.js';
import type { DebianGuestInput } from './debian.js';
import { validateNet } from './net-validate.js';
import type { SelinuxMode } from './selinux.js';
import { validateTimezone } from './timezone.js';

export interface GuestEditInput extends DebianGuestInput {
  /** UUID of the VM's root filesystem (the one in fstabText): root= of the guest's own boot entries. */
  rootFsUuid: string;
  /** A fresh UUID for the guest's network connection profile (NetworkManager, ifcfg UUID=); the domain UUID will do. */
  connectionUuid: string;
  /** OpenSSH public key lines (--ssh-key) appended to root's authorized_keys. */
  sshAuthorizedKeys?: readonly string[];
  /** IANA zone name ('Europe/Berlin'); the template's zone stays when absent. */
  timezone?: string;
  /** Default 'relabel'. Only acted on when the guest has /etc/selinux/config. */
  selinux?: SelinuxMode;
}

export interface CheckedNames {
  hostname: string;
  domain: string | undefined;
  /** hostname.domain, or the short name without a domain. */
  fqdn: string;
}

/** The checks every adapter makes before it plans anything, so bad input fails before the first edit. */
export function checkInput(input: GuestEditInput): CheckedNames {
  const hostname = validateHostname(input.hostname);
  // validateDomainName leaves room for a 63-character label, so hostname.domain always fits in 253.
  const domain = input.domain === undefined || input.domain === '' ? undefined : validateDomainName(input.domain);
  validateNet(input.net);
  if (input.fstabText.includes('\0')) throw invalidInput('fstab text contains a NUL byte');
  assertUuid(input.rootFsUuid, 'root filesystem UUID');
  assertUuid(input.connectionUuid, 'connection UUID');
  if (input.timezone !== undefined) validateTimezone(input.timezone);
  return { hostname, domain, fqdn: domain === undefined ? hostname : `${hostname}.${domain}` };
}
