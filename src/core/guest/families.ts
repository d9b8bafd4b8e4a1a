/** The guest OS families vmforge can adapt, and the --guest-family flag's values. */
import { invalidInput } from '../../errors.js';
import { quoteForMessage } from '../names.js';

export const GUEST_FAMILIES = ['debian', 'ubuntu', 'systemd-networkd', 'rhel-legacy', 'rhel8', 'rhel9'] as const;
export type GuestFamily = (typeof GUEST_FAMILIES)[number];

/** One line per family, for --help, error hints and docs. */
export const GUEST_FAMILY_DESCRIPTIONS: Record<GuestFamily, string> = {
  debian: 'Debian, Ubuntu before 18.04 and other ifupdown systems (/etc/network/interfaces)',
  ubuntu: 'Ubuntu 18.04+ and other netplan systems',
  'systemd-networkd': 'Arch and other systemd-networkd systems',
  'rhel-legacy': 'RHEL/CentOS 5-7, Fedora before 29 (ifcfg files, GRUB legacy or GRUB 2)',
  rhel8: 'RHEL/CentOS/Rocky/Alma 8, Fedora 29-35 (ifcfg or NetworkManager keyfile, BLS)',
  rhel9: 'RHEL/Rocky/Alma 9+, Fedora 36+ (NetworkManager keyfiles, BLS)',
};

export const GUEST_FAMILY_HINT = `force one with --guest-family: ${GUEST_FAMILIES.map((f) => `${f} (${GUEST_FAMILY_DESCRIPTIONS[f]})`).join('; ')}`;

/** Validates a --guest-family value. */
export function parseGuestFamily(text: string): GuestFamily {
  const family = GUEST_FAMILIES.find((f) => f === text);
  if (family === undefined) throw invalidInput(`guest family ${quoteForMessage(text)} is not one vmforge knows`, GUEST_FAMILY_HINT.replace(/^force one with --guest-family/, 'use one of'));
  return family;
}

/**
 * The family to adapt the guest as: the forced one when given, else the detected one. `osDescription` names what
 * was found (like "openSUSE Leap 15.5"), for the error when neither exists.
 */
export function resolveGuestFamily(forced: string | undefined, detected: GuestFamily | null, osDescription: string): GuestFamily {
  if (forced !== undefined) return parseGuestFamily(forced);
  if (detected !== null) return detected;
  throw invalidInput(`vmforge does not know how to configure this guest OS (${osDescription})`, GUEST_FAMILY_HINT);
}

/** The os-release families (manifest os.family) each guest family adapts; systemd-networkd fits any systemd OS. */
const FITS_OS: Record<GuestFamily, readonly string[] | 'any'> = {
  debian: ['debian'],
  ubuntu: ['debian'],
  'systemd-networkd': 'any',
  'rhel-legacy': ['rhel'],
  rhel8: ['rhel'],
  rhel9: ['rhel'],
};

/**
 * A forced --guest-family that contradicts the bundle's detected OS family (rhel9 files on a Debian root) would
 * write config the guest never reads. Only an OS of unknown family ('other') takes any family: that is what the
 * flag is for.
 */
export function requireFamilyFitsOs(forced: string | undefined, os: { family: string; prettyName: string }): void {
  if (forced === undefined || os.family === 'other') return;
  const family = parseGuestFamily(forced);
  const fits = FITS_OS[family];
  if (fits === 'any' || fits.includes(os.family)) return;
  const matching = GUEST_FAMILIES.filter((f) => FITS_OS[f] === 'any' || (FITS_OS[f] as readonly string[]).includes(os.family));
  throw invalidInput(
    `--guest-family ${family} does not fit the bundle's OS (${os.prettyName}, ${os.family} family)`,
    `drop --guest-family to use the detected one, or give one for this OS: ${matching.join(', ')}`,
  );
}
