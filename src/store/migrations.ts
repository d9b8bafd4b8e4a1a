/**
 * Schema migrations, in order. Written with kysely's schema builder so the same steps run on PostgreSQL
 * later; only portable column types are used (text, integer, real).
 */
import { sql, type Kysely, type Migration } from 'kysely';

export const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('vms')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('uuid', 'text', (c) => c.notNull().unique())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('bundle_ref', 'text', (c) => c.notNull())
        .addColumn('bundle_sha256', 'text', (c) => c.notNull())
        .addColumn('disk_path', 'text', (c) => c.notNull())
        .addColumn('mac', 'text', (c) => c.unique())
        .addColumn('ip', 'text')
        .addColumn('domain_name', 'text', (c) => c.notNull())
        .addColumn('console_log', 'text')
        .addColumn('boot_seconds', 'real')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('jobs')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('vm_name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('pid', 'integer', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema
        .createTable('journal')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('job_id', 'integer', (c) => c.notNull().references('jobs.id'))
        .addColumn('step_id', 'text', (c) => c.notNull())
        .addColumn('record', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('undone_at', 'text')
        .execute();
      await db.schema.createIndex('journal_job').on('journal').column('job_id').execute();
      await db.schema
        .createTable('step_timings')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('job_id', 'integer', (c) => c.notNull().references('jobs.id'))
        .addColumn('step_id', 'text', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('duration_ms', 'real', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .execute();
      await sql`select 1`.execute(db);
    },
  },
  /** Networks (address pools) and their leases: one address and MAC per VM, unique enforced here. */
  '0002_networks': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('networks')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('cidr', 'text', (c) => c.notNull())
        .addColumn('gateway', 'text', (c) => c.notNull())
        .addColumn('range', 'text', (c) => c.notNull())
        .addColumn('excludes', 'text', (c) => c.notNull())
        .addColumn('bridge', 'text', (c) => c.notNull())
        .addColumn('vlan', 'integer')
        .addColumn('dns_servers', 'text', (c) => c.notNull())
        .addColumn('dns_zone', 'text')
        .addColumn('ipv6', 'text')
        .addColumn('dhcp', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('leases')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('network', 'text', (c) => c.notNull().references('networks.name'))
        .addColumn('vm_name', 'text', (c) => c.notNull().unique())
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('ipv6', 'text')
        .addColumn('mac', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('leases_network_ip', ['network', 'ip'])
        .execute();
      // NULLs are distinct in unique indexes, so networks without IPv6 are unaffected.
      await db.schema.createIndex('leases_network_ipv6').on('leases').columns(['network', 'ipv6']).unique().execute();
    },
  },
  /** What a build registered outside libvirt and the disk, so destroy removes exactly that. */
  '0003_vm_identity': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('vms').addColumn('dns_records', 'text').execute();
      await db.schema.alterTable('vms').addColumn('dhcp', 'text').execute();
    },
  },
  /** The VM's own SSH host keys (public halves and fingerprints) and its cloud-init seed image, for show and destroy. */
  '0004_vm_ssh_host_keys': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('vms').addColumn('ssh_host_keys', 'text').execute();
      await db.schema.alterTable('vms').addColumn('cloud_init_seed', 'text').execute();
    },
  },
  /**
   * Jobs started through the API (`vmforge serve`): the request they were asked with, how they ended (result or
   * problem, as JSON), every event they emitted in order (replayed to event-stream clients from Last-Event-ID),
   * and the API's bearer tokens (sha256 digests only).
   */
  '0005_api_jobs_tokens': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('jobs').addColumn('request', 'text').execute();
      await db.schema.alterTable('jobs').addColumn('result', 'text').execute();
      await db.schema.alterTable('jobs').addColumn('problem', 'text').execute();
      await db.schema
        .createTable('job_events')
        .addColumn('job_id', 'integer', (c) => c.notNull().references('jobs.id'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('job_events_pk', ['job_id', 'seq'])
        .execute();
      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .execute();
    },
  },
};
