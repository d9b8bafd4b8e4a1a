/**
 * The few facts vmforge reads back from a domain's XML (from `virsh dumpxml`): enough to check MAC
 * uniqueness across domains and to know which disk images a domain uses when cleaning up.
 */
import { VmforgeError } from '../../errors.js';
import { attr, childElements, parseXml, textOf, type XmlElement } from './xml.js';

export interface DomainFacts {
  name: string;
  uuid: string;
  /** Lower-case, in document order. */
  macs: string[];
  /** The `file` (or `dev`) of each <disk>'s <source>, in document order; disks without a source are skipped. */
  diskSources: string[];
}

export function readDomainFacts(xml: string): DomainFacts {
  const root = parseXml(xml);
  if (root.name !== 'domain') throw new VmforgeError('INVALID_INPUT', `expected a <domain> document, got <${root.name}>`);
  const one = (name: string): string => {
    const e = childElements(root, name)[0];
    if (!e) throw new VmforgeError('INVALID_INPUT', `domain XML has no <${name}>`);
    return textOf(e).trim();
  };
  const devices: XmlElement[] = childElements(root, 'devices').flatMap((d) => childElements(d));
  const macs: string[] = [];
  const diskSources: string[] = [];
  for (const dev of devices) {
    if (dev.name === 'interface') {
      const address = childElements(dev, 'mac').map((m) => attr(m, 'address'))[0];
      if (address !== undefined) macs.push(address.toLowerCase());
    } else if (dev.name === 'disk') {
      const src = childElements(dev, 'source')[0];
      const path = src && (attr(src, 'file') ?? attr(src, 'dev'));
      if (path !== undefined) diskSources.push(path);
    }
  }
  return { name: one('name'), uuid: one('uuid').toLowerCase(), macs, diskSources };
}
