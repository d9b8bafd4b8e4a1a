/** Row types of the state database (kysely table interfaces). JSON columns are stored as text. */
import type { Generated } from 'kysely';

export type VmStatus = 'building' | 'defined' | 'running' | 'failed' | 'destroying';
export type JobStatus = 'running' | 'succeeded' | 'failed' | 'undone' | 'undo-failed';

export interface VmsTable {
  name: string;
  uuid: string;
  status: VmStatus;
  /** VmSpec as JSON */
  spec: string;
  bundle_ref: string;
  bundle_sha256: string;
  disk_path: string;
  mac: string | null;
  ip: string | null;
  domain_name: string;
  console_log: string | null;
  boot_seconds: number | null;
  /** JSON { settings: { server, keyFile }, records: DnsRecord[] }: the records this VM's build added. */
  dns_records: string | null;
  /** JSON { dhcp, uri, reservation }: the DHCP reservation made for this VM. */
  dhcp: string | null;
  /** JSON StoredHostKey[] (type, publicKey, fingerprint): the host keys the build put in the guest. Never private halves. */
  ssh_host_keys: string | null;
  /** Path of the cloud-init NoCloud seed image (--cloud-init) this VM's build made. */
  cloud_init_seed: string | null;
  created_at: string;
  updated_at: string;
}

export interface JobsTable {
  id: Generated<number>;
  kind: string;
  vm_name: string;
  status: JobStatus;
  pid: number;
  error: string | null;
  started_at: string;
  finished_at: string | null;
}

export interface JournalTable {
  id: Generated<number>;
  job_id: number;
  step_id: string;
  /** UndoRecord as JSON */
  record: string;
  created_at: string;
  undone_at: string | null;
}

export interface StepTimingsTable {
  id: Generated<number>;
  job_id: number;
  step_id: string;
  title: string;
  status: 'done' | 'failed' | 'skipped';
  duration_ms: number;
  started_at: string;
}

export interface NetworksTable {
  name: string;
  /** Network address and prefix, like 10.20.0.0/24 */
  cidr: string;
  gateway: string;
  /** FIRST-LAST */
  range: string;
  /** string[] as JSON: single addresses or FIRST-LAST */
  excludes: string;
  bridge: string;
  vlan: number | null;
  /** string[] as JSON */
  dns_servers: string;
  dns_zone: string | null;
  ipv6: string | null;
  /** 'none' | 'libvirt:NET' | 'dnsmasq:DIR' */
  dhcp: string;
  created_at: string;
}

export interface LeasesTable {
  id: Generated<number>;
  network: string;
  vm_name: string;
  ip: string;
  ipv6: string | null;
  mac: string;
  created_at: string;
}

export interface Database {
  vms: VmsTable;
  jobs: JobsTable;
  journal: JournalTable;
  step_timings: StepTimingsTable;
  networks: NetworksTable;
  leases: LeasesTable;
}
