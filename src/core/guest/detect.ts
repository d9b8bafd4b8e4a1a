/**
 * Which adapter a guest needs. The bundle manifest's OS (recorded at bundle creation) or, better, the guest's own
 * release files: os-release, and for releases without one (CentOS 6) redhat-release or debian_version.
 */
import { detectOs, RELEASE_FILE_PATHS, type Manifest, type ReleaseFiles } from '../../bundles/manifest.js';
import { dirOf, fileOf, type GuestFiles, type GuestFilesNeeded } from './current-files.js';
import type { GuestFamily } from './families.js';

const NETPLAN_DIR = '/etc/netplan';

/** What detectGuestFamily reads from the guest. */
export const DETECTION_READS: GuestFilesNeeded = {
  files: [...new Set(Object.values(RELEASE_FILE_PATHS).flat())],
  dirs: [NETPLAN_DIR],
  links: [],
};

type Os = Manifest['os'];

function releaseFilesOf(current: GuestFiles): ReleaseFiles {
  const first = (paths: readonly string[]) => paths.map((p) => fileOf(current, p)).find((t) => t !== null) ?? undefined;
  return {
    osRelease: first(RELEASE_FILE_PATHS.osRelease),
    redhatRelease: first(RELEASE_FILE_PATHS.redhatRelease),
    debianVersion: first(RELEASE_FILE_PATHS.debianVersion),
    suseRelease: first(RELEASE_FILE_PATHS.suseRelease),
    archRelease: first(RELEASE_FILE_PATHS.archRelease) !== undefined,
  };
}

/** Major and minor of a VERSION_ID ('7', '8.9', '22.04', '2023'); null when it has no leading number. */
function versionOf(versionId: string): [number, number] | null {
  const m = /^(\d+)(?:\.(\d+))?/.exec(versionId);
  return m ? [Number(m[1]), Number(m[2] ?? 0)] : null;
}

/** The family for an OS as the manifest records it; `netplan` says the guest has netplan configuration. */
export function familyForOs(os: Os, netplan = false): GuestFamily | null {
  const version = versionOf(os.versionId);
  switch (os.family) {
    case 'debian':
      if (os.id === 'ubuntu') return version !== null && version[0] < 18 ? 'debian' : 'ubuntu';
      return netplan ? 'ubuntu' : 'debian';
    case 'arch':
      return 'systemd-networkd';
    case 'rhel': {
      if (version === null) return null;
      const [major] = version;
      if (os.id === 'fedora') return major >= 36 ? 'rhel9' : major >= 29 ? 'rhel8' : 'rhel-legacy';
      // Amazon Linux 2 is 7-based; 2023 is Fedora-based but networked by systemd-networkd.
      if (os.id === 'amzn') return major >= 2022 ? 'systemd-networkd' : 'rhel-legacy';
      return major >= 9 ? 'rhel9' : major === 8 ? 'rhel8' : major >= 5 ? 'rhel-legacy' : null;
    }
    case 'suse':
    case 'other':
      return null;
  }
}

/**
 * The guest's family, or null when vmforge has no adapter for it (the caller then needs --guest-family). The
 * guest's files win over the manifest: a bundle made before detection improved may record less.
 */
export function detectGuestFamily(source: { current?: GuestFiles; manifestOs?: Os }): GuestFamily | null {
  if (source.current !== undefined) {
    const os = detectOs(releaseFilesOf(source.current));
    const netplan = dirOf(source.current, NETPLAN_DIR).some((n) => /\.ya?ml$/.test(n));
    const family = familyForOs(os, netplan);
    if (family !== null || source.manifestOs === undefined) return family;
  }
  return source.manifestOs === undefined ? null : familyForOs(source.manifestOs);
}

/** The detected OS as a person would name it, for the unknown-family error. */
export function describeGuestOs(source: { current?: GuestFiles; manifestOs?: Os }): string {
  const os = source.current !== undefined ? detectOs(releaseFilesOf(source.current)) : source.manifestOs;
  return os === undefined || os.prettyName === '' ? 'no release files found' : os.prettyName;
}
