import { describe, expect, it } from 'vitest';
import { readDomainFacts } from './facts.js';
import { el, escapeAttr, escapeText, parseXml, serializeXml, textEl } from './xml.js';

describe('xml builder', () => {
  it('drops absent attributes and children, prints booleans as yes/no', () => {
    const tree = el('a', { x: 'v', y: undefined, z: null, b: false, n: 3 }, null, false, [textEl('t', 'hi'), undefined], el('e'));
    expect(serializeXml(tree)).toBe("<a x='v' b='no' n='3'>\n  <t>hi</t>\n  <e/>\n</a>\n");
  });

  it('escapes markup and quote characters', () => {
    expect(escapeText(`a<b>&"'`)).toBe(`a&lt;b&gt;&amp;"'`);
    expect(escapeAttr(`a<b>&"'\t\n\r`)).toBe('a&lt;b&gt;&amp;&quot;&apos;&#9;&#10;&#13;');
  });

  it('refuses names that are not XML names', () => {
    expect(() => el('a b')).toThrow();
    expect(() => el('a', { 'x"y': '1' })).toThrow();
  });

  it('refuses mixed content', () => {
    expect(() => serializeXml(el('a', {}, 'text', el('b')))).toThrow(/mixes/);
  });
});

describe('xml parser', () => {
  it('round-trips odd values through serialize + parse', () => {
    const value = `q"u'o<t>e&s\ttab\nnl`;
    const root = parseXml(serializeXml(el('r', { v: value }, textEl('t', value))));
    expect(root.attrs).toEqual([['v', value]]);
    expect(root.children).toEqual([{ name: 't', attrs: [], children: [value] }]);
  });

  it('handles declarations, comments, CDATA, double quotes and character references', () => {
    const root = parseXml(`<?xml version="1.0"?>\n<!-- hi --><r a="1" b = '&#65;&#x42;'><![CDATA[<raw>]]><c/></r>`);
    expect(root.attrs).toEqual([
      ['a', '1'],
      ['b', 'AB'],
    ]);
    expect(root.children).toEqual(['<raw>', { name: 'c', attrs: [], children: [] }]);
  });

  it('rejects malformed documents', () => {
    expect(() => parseXml('<a><b></a>')).toThrow(/unexpected/);
    expect(() => parseXml('<a>')).toThrow(/unclosed/);
    expect(() => parseXml('<a/><b/>')).toThrow(/more than one root/);
    expect(() => parseXml('<a>&nbsp;</a>')).toThrow(/entity/);
  });
});

describe('readDomainFacts', () => {
  it('reads what virsh dumpxml prints for a running domain', () => {
    const xml = `<domain type='qemu' id='3'>
  <name>web&amp;1</name>
  <uuid>6F1C2A4E-8D3B-4C5A-9E7F-0A1B2C3D4E5F</uuid>
  <metadata><x:y xmlns:x="urn:x"><name>not-this</name></x:y></metadata>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/a.qcow2' index='2'/>
      <backingStore type='file' index='3'><format type='raw'/><source file='/var/lib/base.raw'/></backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'><source dev='/dev/loop3'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>
    <interface type='user'>
      <mac address='52:54:00:AA:BB:CC'/>
      <model type='virtio'/>
      <alias name='net0'/>
    </interface>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
  </devices>
</domain>
`;
    expect(readDomainFacts(xml)).toEqual({
      name: 'web&1',
      uuid: '6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f',
      macs: ['52:54:00:aa:bb:cc', '52:54:00:00:00:01'],
      diskSources: ['/var/lib/a.qcow2', '/dev/loop3'],
    });
  });

  it('rejects a document that is not a domain', () => {
    expect(() => readDomainFacts('<network><name>x</name></network>')).toThrow(/domain/);
  });
});
