/** `--listen HOST:PORT` for `vmforge repo serve`; IPv6 hosts in brackets (`[::1]:8700`). */
import { invalidInput } from '../../errors.js';

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  const hint = 'use HOST:PORT, e.g. 127.0.0.1:8700 or [::1]:8700 (port 0: any free port)';
  if (!m) throw invalidInput(`--listen '${text}' is not HOST:PORT`, hint);
  const port = Number(m[3]);
  if (port > 65535) throw invalidInput(`--listen '${text}': port ${port} is out of range`, hint);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** The base URL clients use for an address the server is bound to. */
export function baseUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
