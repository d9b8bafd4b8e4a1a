/**
 * The application context: config, state database, and the executors the use cases run through. The CLI
 * builds one per invocation; tests build one against temp dirs.
 */
import { existsSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { HostProcessRunner, type HostRunner } from '../exec/runner.js';
import { VirshHypervisor, type Hypervisor } from '../exec/libvirt/hypervisor.js';
import { BundleStore } from '../bundles/store.js';
import { openDb, type Db } from '../store/db.js';
import { JobRepo } from '../store/jobs.js';
import { VmRepo } from '../store/vms.js';
import { LeaseRepo, NetworkRepo } from '../store/networks.js';
import { openLog, type JsonLog } from './log.js';

export interface AppContext {
  config: Config;
  db: Db;
  /** The one runner: every program a use case starts goes through it (tests may pass their own). */
  runner: HostRunner;
  hypervisor: Hypervisor;
  bundles: BundleStore;
  vms: VmRepo;
  jobs: JobRepo;
  networks: NetworkRepo;
  /** Address + MAC leases (allocate/release are transactional across processes). */
  leases: LeaseRepo;
  /** The operations log (opened on first use, so read-only commands never create it). */
  log(): JsonLog;
  /** How to start this vmforge again for background work (the host key pool's filler); unset in-process. */
  selfCommand?: SelfCommand;
  close(): Promise<void>;
}

export interface SelfCommand {
  execPath: string;
  execArgv: readonly string[];
  entry: string | undefined;
}

export async function createContext(opts: { configPath?: string; config?: Config; runner?: HostRunner; readOnly?: boolean; libvirtUri?: string; selfCommand?: SelfCommand }): Promise<AppContext> {
  const loaded = opts.config ?? (await loadConfig(opts.configPath));
  // --connect URI: every virsh call of this invocation (and the undo records it journals) uses it.
  const config = opts.libvirtUri ? { ...loaded, libvirt: { ...loaded.libvirt, uri: opts.libvirtUri } } : loaded;
  // A read-only use (--dry-run) on a host with no state yet must not create any: an empty in-memory
  // inventory answers its questions just as well.
  const db = await openDb(opts.readOnly && !existsSync(config.dbPath) ? ':memory:' : config.dbPath);
  const runner = opts.runner ?? new HostProcessRunner();
  let logger: JsonLog | null = null;
  return {
    config,
    db,
    runner,
    hypervisor: new VirshHypervisor(runner, config.libvirt.uri),
    bundles: new BundleStore(config.bundles.dir),
    vms: new VmRepo(db),
    jobs: new JobRepo(db),
    networks: new NetworkRepo(db),
    leases: new LeaseRepo(db),
    log: () => (logger ??= openLog(config.stateDir)),
    ...(opts.selfCommand ? { selfCommand: opts.selfCommand } : {}),
    close: () => db.destroy(),
  };
}
