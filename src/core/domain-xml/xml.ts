/**
 * A tiny XML element tree: a builder, a serializer with escaping, and a small parser for reading back
 * what libvirt prints. Enough for libvirt domain XML (elements, attributes, text); no namespaces
 * processing, no DTDs, no mixed content on output.
 */
import { VmforgeError } from '../../errors.js';

export interface XmlElement {
  name: string;
  /** Ordered, because libvirt prints attributes in a fixed order and goldens should read the same way. */
  attrs: Array<[string, string]>;
  children: XmlNode[];
}
export type XmlNode = XmlElement | string;

export type AttrValue = string | number | boolean | null | undefined;
/** Anything `el` accepts as a child; null/undefined/false are dropped so optional parts read inline. */
export type ChildArg = XmlNode | null | undefined | false | readonly ChildArg[];

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?$/;
// XML 1.0 cannot carry these at all, not even as character references.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARS_RE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

function checkName(name: string): string {
  if (!NAME_RE.test(name)) throw new VmforgeError('INTERNAL', `invalid XML name ${JSON.stringify(name)}`);
  return name;
}

function checkChars(value: string, where: string): string {
  if (FORBIDDEN_CHARS_RE.test(value)) {
    throw new VmforgeError('INVALID_INPUT', `${where} contains a control character that XML cannot represent`, {
      hint: 'remove control characters from the value',
    });
  }
  return value;
}

/** Build an element. Attributes whose value is null/undefined are left out; booleans print as 'yes'/'no'. */
export function el(name: string, attrs: Record<string, AttrValue> = {}, ...children: ChildArg[]): XmlElement {
  const a: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    a.push([checkName(k), typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v)]);
  }
  return { name: checkName(name), attrs: a, children: flatten(children) };
}

/** An element holding only text, e.g. `<name>vm1</name>`. */
export function textEl(name: string, text: string | number, attrs: Record<string, AttrValue> = {}): XmlElement {
  return el(name, attrs, String(text));
}

function flatten(children: readonly ChildArg[]): XmlNode[] {
  const out: XmlNode[] = [];
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) out.push(...flatten(c as readonly ChildArg[]));
    else out.push(c as XmlNode);
  }
  return out;
}

export function escapeText(s: string): string {
  checkChars(s, 'text');
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

export function escapeAttr(s: string): string {
  checkChars(s, 'attribute value');
  // Whitespace other than space is escaped because parsers normalise raw tabs/newlines in attributes to spaces.
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\t/g, '&#9;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;');
}

/**
 * Serialize with two-space indentation and single-quoted attributes (libvirt's own style). An element
 * holding only text stays on one line; text is never mixed with child elements.
 */
export function serializeXml(root: XmlElement): string {
  const lines: string[] = [];
  write(root, 0, lines);
  return lines.join('\n') + '\n';
}

function write(node: XmlElement, depth: number, lines: string[]): void {
  const pad = '  '.repeat(depth);
  const open = `<${node.name}${node.attrs.map(([k, v]) => ` ${k}='${escapeAttr(v)}'`).join('')}`;
  if (node.children.length === 0) {
    lines.push(`${pad}${open}/>`);
    return;
  }
  const texts = node.children.filter((c): c is string => typeof c === 'string');
  if (texts.length > 0) {
    if (texts.length !== node.children.length) {
      throw new VmforgeError('INTERNAL', `element <${node.name}> mixes text and elements`);
    }
    lines.push(`${pad}${open}>${escapeText(texts.join(''))}</${node.name}>`);
    return;
  }
  lines.push(`${pad}${open}>`);
  for (const c of node.children) write(c as XmlElement, depth + 1, lines);
  lines.push(`${pad}</${node.name}>`);
}

// ---------------------------------------------------------------------------------------------------
// Parsing: a small non-validating parser, good for well-formed documents such as `virsh dumpxml` output.

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);/g, (whole, ent: string) => {
    if (ent.startsWith('#x')) return String.fromCodePoint(parseInt(ent.slice(2), 16));
    if (ent.startsWith('#')) return String.fromCodePoint(parseInt(ent.slice(1), 10));
    const v = ENTITIES[ent];
    if (v === undefined) throw parseError(`unknown entity ${whole}`);
    return v;
  });
}

function parseError(msg: string): VmforgeError {
  return new VmforgeError('INVALID_INPUT', `cannot parse XML: ${msg}`);
}

const ATTR_RE = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/gy;

/** Parse a document and return its root element. Whitespace-only text between elements is dropped. */
export function parseXml(xml: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let i = 0;
  const pushText = (t: string) => {
    const top = stack[stack.length - 1];
    if (top) {
      if (t.trim() !== '') top.children.push(t);
    } else if (t.trim() !== '') throw parseError('text outside the root element');
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) {
      pushText(unescapeXml(xml.slice(i)));
      break;
    }
    if (lt > i) pushText(unescapeXml(xml.slice(i, lt)));
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt + 4);
      if (end < 0) throw parseError('unterminated comment');
      i = end + 3;
    } else if (xml.startsWith('<![CDATA[', lt)) {
      const end = xml.indexOf(']]>', lt + 9);
      if (end < 0) throw parseError('unterminated CDATA');
      const top = stack[stack.length - 1];
      if (!top) throw parseError('CDATA outside the root element');
      top.children.push(xml.slice(lt + 9, end));
      i = end + 3;
    } else if (xml.startsWith('<?', lt) || xml.startsWith('<!', lt)) {
      const end = xml.indexOf('>', lt);
      if (end < 0) throw parseError('unterminated declaration');
      i = end + 1;
    } else if (xml.startsWith('</', lt)) {
      const end = xml.indexOf('>', lt);
      if (end < 0) throw parseError('unterminated end tag');
      const name = xml.slice(lt + 2, end).trim();
      const top = stack.pop();
      if (!top || top.name !== name) throw parseError(`unexpected </${name}>`);
      i = end + 1;
    } else {
      const m = /^<([^\s/>]+)/.exec(xml.slice(lt, lt + 256));
      if (!m?.[1]) throw parseError(`bad start tag at offset ${lt}`);
      const node: XmlElement = { name: m[1], attrs: [], children: [] };
      let j = lt + m[0].length;
      for (;;) {
        while (j < xml.length && /\s/.test(xml[j] ?? '')) j++;
        if (xml.startsWith('/>', j) || xml[j] === '>') break;
        ATTR_RE.lastIndex = j;
        const am = ATTR_RE.exec(xml);
        if (!am?.[1]) throw parseError(`bad attribute in <${node.name}> at offset ${j}`);
        node.attrs.push([am[1], unescapeXml(am[2] ?? am[3] ?? '')]);
        j = ATTR_RE.lastIndex;
      }
      const selfClosing = xml.startsWith('/>', j);
      i = j + (selfClosing ? 2 : 1);
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(node);
      else if (root) throw parseError('more than one root element');
      else root = node;
      if (!selfClosing) stack.push(node);
    }
  }
  if (stack.length > 0) throw parseError(`unclosed <${stack[stack.length - 1]?.name}>`);
  if (!root) throw parseError('no root element');
  return root;
}

export function attr(node: XmlElement, name: string): string | undefined {
  return node.attrs.find(([k]) => k === name)?.[1];
}

export function childElements(node: XmlElement, name?: string): XmlElement[] {
  return node.children.filter((c): c is XmlElement => typeof c !== 'string' && (name === undefined || c.name === name));
}

export function textOf(node: XmlElement): string {
  return node.children.filter((c): c is string => typeof c === 'string').join('');
}
