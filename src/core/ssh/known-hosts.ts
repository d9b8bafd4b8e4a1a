/** known_hosts lines for a VM, from its stored host keys (`vmforge vm known-hosts NAME`). */
import { invalidInput } from '../../errors.js';
import { parsePublicKey } from './public-key.js';

/**
 * known_hosts treats '*', '?' and '!' as patterns, ',' separates names and whitespace ends the field; '[' starts
 * the '[host]:port' form. A name with any of them would silently match other hosts or none.
 */
const NAME_RE = /^[A-Za-z0-9._:-]+$/;

/**
 * One 'name,fqdn,ip ALGORITHM BASE64' line per key. `names`: the VM name, its FQDN, its addresses, in the order
 * given; duplicates and empty entries dropped (a VM without a domain has name == fqdn). The key comment is left
 * out: ssh ignores it, and it only names the VM again.
 */
export function knownHostsLines(names: readonly string[], keys: readonly { publicKey: string }[]): string {
  const hosts = [...new Set(names.map((n) => n.trim().toLowerCase()).filter((n) => n !== ''))];
  if (hosts.length === 0) throw invalidInput('a known_hosts line needs at least one host name or address');
  for (const h of hosts) {
    if (!NAME_RE.test(h)) throw invalidInput(`'${h.slice(0, 60)}' cannot be a known_hosts host name`);
  }
  const field = hosts.join(',');
  return keys
    .map((k) => {
      const key = parsePublicKey(k.publicKey);
      return `${field} ${key.algorithm} ${key.base64}\n`;
    })
    .join('');
}
