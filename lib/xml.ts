// XML in and out. Stanzas are ltx elements; frames are parsed here and only here.
import { clone, createElement, type Element, parse } from 'ltx';

export type { Element } from 'ltx';

/** A deep copy, detached from its parent. */
export const cloneElement = (element: Element): Element => clone(element) as Element;

type Child = Element | string | false | null | undefined;

/** `xml(name, attrs, ...children)`: falsy children and undefined attributes drop out. */
export function xml(name: string, attrs?: Record<string, string | number | undefined> | null, ...children: Child[]): Element {
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
  | { kind: 'malformed'; reason: string };

// RFC 6120 §11.1: comments, processing instructions, DTDs and entity references other
// than the five predefined ones (and character references) are not allowed.
const PREDEFINED_ENTITY = /^&(?:lt|gt|amp|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/;

function findRestrictedXml(text: string): string | undefined {
  const withoutDeclaration = text.replace(/^\s*<\?xml\s[^?]*\?>/, '');
  const outsideCdata = withoutDeclaration.replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '');
  if (/<!DOCTYPE/i.test(outsideCdata)) return 'DTD';
  if (/<!ENTITY/i.test(outsideCdata)) return 'entity declaration';
  if (outsideCdata.includes('<!--')) return 'comment';
  if (outsideCdata.includes('<?')) return 'processing instruction';
  for (let index = outsideCdata.indexOf('&'); index !== -1; index = outsideCdata.indexOf('&', index + 1)) {
    if (!PREDEFINED_ENTITY.test(outsideCdata.slice(index, index + 12))) return 'entity reference';
  }
  return undefined;
}

/**
 * RFC 7395 §3.3.3: a frame carries complete top-level elements. More than one is
 * accepted and handled in order; text between them must be whitespace. The frame is
 * parsed inside a wrapper element so that every root and any stray text are seen.
 */
const WRAPPER = 'frame-root-3f9c';

export function parseFrame(text: string): ParsedFrame {
  if (text.trim() === '') return { kind: 'empty' };
  const restricted = findRestrictedXml(text);
  if (restricted) return { kind: 'restricted', reason: restricted };
  const body = text.replace(/^\s*<\?xml\s[^?]*\?>/, '');
  if (body.includes(WRAPPER)) return { kind: 'malformed', reason: 'unexpected element name' };
  let root: Element | null;
  try {
    root = parse(`<${WRAPPER}>${body}</${WRAPPER}>`);
  } catch (error) {
    return { kind: 'malformed', reason: (error as Error).message };
  }
  if (!root) return { kind: 'malformed', reason: 'no element' };
  const elements: Element[] = [];
  for (const child of root.children) {
    if (typeof child === 'string') {
      if (child.trim() !== '') return { kind: 'malformed', reason: 'text outside an element' };
    } else {
      child.parent = null;
      elements.push(child);
    }
  }
  if (elements.length === 0) return { kind: 'malformed', reason: 'no element' };
  return { kind: 'elements', elements };
}
