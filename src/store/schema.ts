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
  /** API jobs: the request as JSON (null for jobs the CLI started). */
  request: string | null;
  /** API jobs: the use case's result as JSON once it succeeded. */
  result: string | null;
  /** API jobs: the failure as JSON { code, message, hint, undoErrors }. */
  problem: string | null;
}

export interface JobEventsTable {
  job_id: number;
  /** 1, 2, ... per job: the event stream's id (Last-Event-ID). */
  seq: number;
  /** The event as JSON. */
  event: string;
  created_at: string;
}

export type ApiRole = 'viewer' | 'operator' | 'admin';

export interface ApiTokensTable {
  id: Generated<number>;
  name: string;
  role: ApiRole;
  /** sha256 of the token, hex. The token itself is shown once, when made, and never stored. */
  digest: string;
  created_at: string;
  last_used_at: string | null;
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
  job_events: JobEventsTable;
  api_tokens: ApiTokensTable;
}
