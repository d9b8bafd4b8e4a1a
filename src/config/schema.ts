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
        /**
         * 'auto': kvm only when a KVM guest really runs for libvirt's QEMU user (host facts, then a probe guest
         * cached per host boot: src/app/accelerator.ts), else qemu (TCG) with a one-line reason on every build.
         * 'kvm' on a host where KVM cannot work is refused before any disk work; 'qemu' always emulates.
         */
        domainType: z.enum(['auto', 'kvm', 'qemu']).default('auto'),
        /** What `vm build` makes without --hypervisor: KVM/QEMU domains, or Xen (libxl) ones. */
        hypervisor: z.enum(['kvm', 'xen']).default('kvm'),
      })
      .strict()
      .default({}),
    storage: z
      .object({
        type: z.literal('file').default('file'),
        /** Where VM disks go without --storage: 'file' (images in `dir`), 'lvm:VG' or 'lvm:VG/THINPOOL'. */
        backend: z.string().regex(/^(file|lvm:[^/\s]+(\/[^/\s]+)?)$/, "file, lvm:VG or lvm:VG/THINPOOL").default('file'),
        /** Default: <stateDir>/disks */
        dir: z.string().startsWith('/', 'an absolute path').optional(),
        /** How partitions of a disk file are reached: per-partition loop devices, or partx on a whole-disk loop. */
        partitionAccess: z.enum(['loop-offset', 'partx']).default('loop-offset'),
        /**
         * How `vm build` makes the disk: a clone of the bundle's golden image (qcow2 overlay or reflink copy), or
         * 'off' for the cold path. 'auto' takes the first of qcow2, reflink, off that this host supports.
         */
        clone: z.enum(['auto', 'qcow2', 'reflink', 'off']).default('auto'),
      })
      .strict()
      .default({}),
    bundles: z
      .object({
        /** Default: <stateDir>/bundles */
        dir: z.string().startsWith('/', 'an absolute path').optional(),
        /**
         * Write received blobs (`bundle pull`, `vm build`'s pull, uploads to `repo serve`) with O_DIRECT, where the
         * filesystem takes it: far less CPU, but slower where the disk, not the page-cache copy, is the limit
         * (docs/performance.md). VMFORGE_DIRECT_IO=1/0 overrides it (src/bundles/direct-io.ts).
         */
        directIo: z.enum(['off', 'on']).default('off'),
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
        firmware: z.enum(['bios', 'uefi']).default('bios'),
        /** 'auto' | 'user' | 'none' | 'bridge:NAME' | 'network:NAME' */
        net: z
          .string()
          .regex(/^(auto|user|none|bridge:[A-Za-z0-9_.-]{1,15}|network:[A-Za-z0-9_.-]{1,64})$/, "auto, user, none, bridge:NAME or network:NAME")
          .default('auto'),
        /** How many builds `vm build --count N` runs at once. */
        parallelBuilds: z.number().int().min(1).max(16).default(2),
      })
      .strict()
      .default({}),
    network: z
      .object({
        /** The vmforge network (`vmforge network create`) VMs lease their address from when none is named. */
        default: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'a network name (lower-case letters, digits, -)').optional(),
      })
      .strict()
      .default({}),
    /** The bundle repository this host pulls from and publishes to (client side). */
    repository: z
      .object({
        url: z.string().url('an http(s) URL like http://127.0.0.1:8700').optional(),
        /** File holding the bearer token (first line); never logged. */
        tokenFile: z.string().startsWith('/', 'an absolute path').optional(),
      })
      .strict()
      .default({}),
    /** `vmforge repo serve` (server side). */
    repoServer: z
      .object({
        /** Let requests without a token read (list, manifest, download). */
        anonymousRead: z.boolean().default(false),
        /** Uploads declaring or reaching more than this are refused. */
        maxUploadBytes: size.default('64G'),
        /** A client that sends nothing for this long is disconnected. */
        idleTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
        tokens: z
          .array(
            z
              .object({
                /** Shown in logs instead of the token. */
                name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a short name (letters, digits, . _ -)'),
                token: z.string().min(16, 'at least 16 characters').optional(),
                tokenFile: z.string().startsWith('/', 'an absolute path').optional(),
                scopes: z.array(z.enum(['read', 'write'])).min(1),
              })
              .strict()
              .refine((t) => (t.token === undefined) !== (t.tokenFile === undefined), 'exactly one of token or tokenFile'),
          )
          .default([]),
      })
      .strict()
      .default({}),
    /** `vmforge serve`: the HTTP API (docs/api.md). Its bearer tokens live in the state database (`vmforge token`). */
    apiServer: z
      .object({
        /** PEM certificate chain and key: with both, the API is served over HTTPS. Needed to listen beyond loopback. */
        tls: z
          .object({
            certFile: z.string().startsWith('/', 'an absolute path'),
            keyFile: z.string().startsWith('/', 'an absolute path'),
          })
          .strict()
          .optional(),
        /** Request bodies larger than this are refused (413). */
        maxBodyBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(64 * 1024),
        /** A client address that fails authentication this many times within authFailureWindowSeconds is refused (429) until the window passes. */
        maxAuthFailures: z.number().int().min(1).max(10_000).default(10),
        authFailureWindowSeconds: z.number().int().min(1).max(86_400).default(60),
        /** A connection that sends nothing for this long is closed (event streams send a heartbeat more often). */
        idleTimeoutSeconds: z.number().int().min(5).max(3600).default(60),
      })
      .strict()
      .default({}),
    /** DNS registration of VMs (RFC 2136 dynamic update signed with TSIG); absent: no DNS records. */
    dns: z
      .object({
        /** 'host' or 'host:port' ('[v6]:port'); the zone's primary server. */
        server: z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, 'HOST or HOST:PORT'),
        zone: z.string().min(1),
        /** in-addr.arpa zone; default: derived from the network's prefix (octet boundary). */
        reverseZone: z.string().min(1).optional(),
        /** ip6.arpa zone; default: derived from the IPv6 prefix (nibble boundary). */
        reverseZone6: z.string().min(1).optional(),
        /** BIND key file (`tsig-keygen -a hmac-sha256 NAME`); its path is passed to nsupdate, never the secret. */
        keyFile: z.string().startsWith('/', 'an absolute path'),
        ttl: z.number().int().min(0).max(2_147_483_647).default(300),
      })
      .strict()
      .optional(),
    ssh: z
      .object({
        /**
         * RSA host keys kept made ahead (host-key-pool.ts), so a build does not wait for RSA's prime search;
         * refilled in the background at low priority. 0: every build makes its own.
         */
        hostKeyPool: z.number().int().min(0).max(1000).default(20),
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
