/**
 * The first page of a Linux swap area (union swap_header, version 1), as mkswap writes it. The fast clone path
 * writes these 4 KiB itself where a moved swap partition starts, instead of attaching a loop device and running
 * mkswap (three processes, ~0.5 s on a loaded host) for a page of constant bytes.
 */
import { invalidInput } from '../../errors.js';
import { assertUuid } from './uuid.js';

/** x86_64 (and most) guests; the header is per page and must use the guest's page size. */
export const SWAP_PAGE_SIZE = 4096;
const VERSION_OFFSET = 1024;
const LAST_PAGE_OFFSET = 1028;
const UUID_OFFSET = 1036;
const LABEL_OFFSET = 1052;
const LABEL_MAX = 16;
const MAGIC = 'SWAPSPACE2';
/** mkswap refuses fewer than 10 pages. */
const MIN_PAGES = 10;

export function swapHeaderBytes(input: { sizeBytes: number; uuid: string; label?: string; pageSize?: number }): Buffer {
  const pageSize = input.pageSize ?? SWAP_PAGE_SIZE;
  assertUuid(input.uuid, 'swap UUID');
  const pages = Math.floor(input.sizeBytes / pageSize);
  if (!Number.isSafeInteger(input.sizeBytes) || pages < MIN_PAGES) {
    throw invalidInput(`swap of ${String(input.sizeBytes)} bytes is smaller than ${MIN_PAGES} pages of ${pageSize} bytes`);
  }
  if (pages - 1 > 0xffffffff) throw invalidInput(`swap of ${input.sizeBytes} bytes has more pages than a swap header can count`);
  const label = Buffer.from(input.label ?? '', 'utf8');
  if (label.length >= LABEL_MAX) throw invalidInput(`swap label '${input.label ?? ''}' is longer than ${LABEL_MAX - 1} bytes`);

  const page = Buffer.alloc(pageSize);
  page.writeUInt32LE(1, VERSION_OFFSET);
  page.writeUInt32LE(pages - 1, LAST_PAGE_OFFSET);
  // nr_badpages (at 1032) stays 0.
  Buffer.from(input.uuid.replaceAll('-', ''), 'hex').copy(page, UUID_OFFSET);
  label.copy(page, LABEL_OFFSET);
  page.write(MAGIC, pageSize - MAGIC.length, 'latin1');
  return page;
}
