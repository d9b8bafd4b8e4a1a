import type { Db } from './db.js';
import type { VmStatus, VmsTable } from './schema.js';

export type VmRow = VmsTable;

export class VmRepo {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<VmRow | undefined> {
    return this.db.selectFrom('vms').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async list(): Promise<VmRow[]> {
    return this.db.selectFrom('vms').selectAll().orderBy('name').execute();
  }

  /** Inserts the row; a name that exists already raises the database's unique error (the caller checks first). */
  async insert(row: VmRow): Promise<void> {
    await this.db.insertInto('vms').values(row).execute();
  }

  async update(name: string, patch: Partial<Omit<VmRow, 'name'>>): Promise<void> {
    await this.db
      .updateTable('vms')
      .set({ ...patch, updated_at: new Date().toISOString() })
      .where('name', '=', name)
      .execute();
  }

  async setStatus(name: string, status: VmStatus): Promise<void> {
    await this.update(name, { status });
  }

  async remove(name: string): Promise<void> {
    await this.db.deleteFrom('vms').where('name', '=', name).execute();
  }

  async macsInUse(): Promise<string[]> {
    const rows = await this.db.selectFrom('vms').select('mac').where('mac', 'is not', null).execute();
    return rows.map((r) => r.mac as string);
  }
}
