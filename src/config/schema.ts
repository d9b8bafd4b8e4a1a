/**
 * The config file's schema. Every field has a default so vmforge works with no file at all; paths that
 * default to "under the state dir" are resolved after parsing (see resolveConfig).
 */
import { z } from 'zod';

const size = z.string().regex(/^\d+(\.\d+)?\s*[kKmMgGtT]?(i?[bB])?$/, 'a size like 512M or 4G');

export const configSchema = z
  .object({
    stateDir: z.string().startsWith('/', 'an absolute path').default('/var/lib/vmforge'),
    libvirt: z
      .object({
        uri: z.string().min(1).default('qemu:///system'),
        /** 'auto' picks kvm when /dev/kvm exists, else qemu (TCG). */
        domainType: z.enum(['auto', 'kvm', 'qemu']).default('auto'),
      })
      .strict()
      .default({}),
    storage: z
      .object({
        type: z.literal('file').default('file'),
        /** Default: <stateDir>/disks */
        dir: z.string().startsWith('/', 'an absolute path').optional(),
        /** How partitions of a disk file are reached: per-partition loop devices, or partx on a whole-disk loop. */
        partitionAccess: z.enum(['loop-offset', 'partx']).default('loop-offset'),
      })
      .strict()
      .default({}),
    bundles: z
      .object({
        /** Default: <stateDir>/bundles */
        dir: z.string().startsWith('/', 'an absolute path').optional(),
      })
      .strict()
      .default({}),
    defaults: z
      .object({
        cpus: z.number().int().min(1).max(512).default(1),
        memory: size.default('1G'),
        disk: size.default('4G'),
        swap: size.default('512M'),
        fs: z.enum(['ext4', 'xfs']).default('ext4'),
        /** 'auto' | 'user' | 'none' | 'bridge:NAME' | 'network:NAME' */
        net: z
          .string()
          .regex(/^(auto|user|none|bridge:[A-Za-z0-9_.-]{1,15}|network:[A-Za-z0-9_.-]{1,64})$/, "auto, user, none, bridge:NAME or network:NAME")
          .default('auto'),
      })
      .strict()
      .default({}),
    boot: z
      .object({
        waitTimeoutSeconds: z.number().int().min(1).max(3600).default(300),
      })
      .strict()
      .default({}),
  })
  .strict();

export type ConfigFile = z.infer<typeof configSchema>;

export interface Config extends ConfigFile {
  storage: ConfigFile['storage'] & { dir: string };
  bundles: ConfigFile['bundles'] & { dir: string };
  /** Where the file came from, or null when defaults only. */
  source: string | null;
  dbPath: string;
  runDir: string;
  consoleDir: string;
}
