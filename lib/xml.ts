// XML in and out. Stanzas are ltx elements; frames are parsed here and only here.
import { clone, createElement, type Element } from 'ltx';
import { SaxesParser } from 'saxes';

export type { Element } from 'ltx';

/** A deep copy, detached from its parent. */
export const cloneElement = (element: Element): Element => clone(element) as Element;

type Child = Element | string | false | null | undefined;

/** `xml(name, attrs, ...children)`: falsy children and undefined attributes drop out. */
export function xml(
  name: string,
  attrs?: Record<string, string | number | undefined> | null,
  ...children: Child[]
): Element {
  const cleanAttrs: Record<string, string> = {};
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value !== undefined) cleanAttrs[key] = String(value);
  }
  const element = createElement(name, cleanAttrs);
  for (const child of children) {
    if (child || child === '') {
      if (typeof child === 'string') element.t(child);
      else element.cnode(child);
    }
  }
  return element;
}

export type ParsedFrame =
  | { kind: 'elements'; elements: Element[] }
  | { kind: 'empty' }
  | { kind: 'restricted'; reason: string }
  | { kind: 'malformed'; reason: string }
  | { kind: 'too-deep'; reason: string };

/**
 * Elements nested deeper than this are refused (a policy-violation stream error). Real
 * stanzas stay under 20 levels (XHTML-IM, pubsub payloads); a frame of 30 KB can nest
 * thousands, and the recursive walks over a tree (serialising, copying) would overflow the
 * stack: the frame would fail on every retry and hold its connection's queue.
 */
export const MAX_ELEMENT_DEPTH = 100;

// RFC 6120 §11.1: comments, processing instructions and DTDs are not allowed (entity
// references other than the predefined ones are caught by the parser below).
function findRestrictedXml(text: string): string | undefined {
  const outsideCdata = text.replace(/^\s*<\?xml\s[^?]*\?>/, '').replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '');
  if (/<!DOCTYPE/i.test(outsideCdata)) return 'DTD';
  if (/<!ENTITY/i.test(outsideCdata)) return 'entity declaration';
  if (outsideCdata.includes('<!--')) return 'comment';
  if (outsideCdata.includes('<?')) return 'processing instruction';
  return undefined;
}

class FrameError extends Error {
  constructor(
    readonly kind: 'restricted' | 'malformed' | 'too-deep',
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * RFC 7395 §3.3.3: a frame carries complete top-level elements. More than one is
 * accepted and handled in order; text between them must be whitespace. saxes checks
 * well-formedness strictly (ltx's own parser forgives mismatched tags); the tree is
 * built as ltx elements. Namespace prefixes are kept as written, as ltx does. Parsing stops
 * at the first element deeper than MAX_ELEMENT_DEPTH.
 */
export function parseFrame(text: string): ParsedFrame {
  if (text.trim() === '') return { kind: 'empty' };
  const restricted = findRestrictedXml(text);
  if (restricted) return { kind: 'restricted', reason: restricted };
  const body = text.replace(/^\s*<\?xml\s[^?]*\?>/, '');
  const parser = new SaxesParser({ fragment: true });
  const elements: Element[] = [];
  let current: Element | undefined;
  let depth = 0;
  parser.on('error', (error) => {
    const undefinedEntity = error.message.includes('undefined entity');
    throw new FrameError(
      undefinedEntity ? 'restricted' : 'malformed',
      undefinedEntity ? 'entity reference' : error.message,
    );
  });
  parser.on('opentag', (tag) => {
    if (++depth > MAX_ELEMENT_DEPTH) {
      throw new FrameError('too-deep', `elements are nested at most ${MAX_ELEMENT_DEPTH} deep`);
    }
    const element = createElement(tag.name, tag.attributes as Record<string, string>);
    if (current) current.cnode(element);
    else elements.push(element);
    current = element;
  });
  parser.on('closetag', () => {
    depth--;
    current = current?.parent ?? undefined;
  });
  const onText = (value: string) => {
    if (current) current.t(value);
    else if (value.trim() !== '') throw new FrameError('malformed', 'text outside an element');
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  try {
    parser.write(body).close();
  } catch (error) {
    if (error instanceof FrameError) return { kind: error.kind, reason: error.message };
    throw error;
  }
  if (elements.length === 0) return { kind: 'malformed', reason: 'no element' };
  return { kind: 'elements', elements };
}

/** A stanza this server stored itself: one element, or a bug. */
export function parseStored(text: string): Element {
  const parsed = parseFrame(text);
  if (parsed.kind !== 'elements' || !parsed.elements[0]) throw new Error('a stored stanza does not parse');
  return parsed.elements[0];
}
