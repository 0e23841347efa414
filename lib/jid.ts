// RFC 7622 addresses, strictly: a malformed one is refused rather than "repaired".
// Full PRECIS profiles are approximated by NFKC plus case folding of local and domain.

export interface Jid {
  readonly local?: string;
  readonly domain: string;
  readonly resource?: string;
}

const MAX_PART_BYTES = 1023;
const LOCAL_FORBIDDEN = /[\s"&'/:<>@\p{Cc}]/u;
const DOMAIN_ALLOWED = /^[\p{L}\p{N}.-]+$/u;
const RESOURCE_FORBIDDEN = /\p{Cc}/u;

/** RFC 5890 labels: not empty, no hyphen at either end. */
const validLabel = (label: string) => label !== '' && !label.startsWith('-') && !label.endsWith('-');

const tooLong = (part: string) => Buffer.byteLength(part, 'utf8') > MAX_PART_BYTES;

/** Parses and normalises a JID; undefined when it is malformed. */
export function parseJid(text: string): Jid | undefined {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const resource = slash === -1 ? undefined : text.slice(slash + 1).normalize('NFKC');
  const at = address.indexOf('@');
  const local = at === -1 ? undefined : address.slice(0, at).normalize('NFKC').toLowerCase();
  const domain = (at === -1 ? address : address.slice(at + 1))
    .normalize('NFKC')
    .toLowerCase()
    .replace(/\.$/, '');
  if (local !== undefined && (local === '' || tooLong(local) || LOCAL_FORBIDDEN.test(local)))
    return undefined;
  if (
    domain === '' ||
    tooLong(domain) ||
    !DOMAIN_ALLOWED.test(domain) ||
    !domain.split('.').every(validLabel)
  )
    return undefined;
  if (resource !== undefined && (resource === '' || tooLong(resource) || RESOURCE_FORBIDDEN.test(resource))) {
    return undefined;
  }
  return { local, domain, resource };
}

export const bare = (jid: Jid): string => (jid.local ? `${jid.local}@${jid.domain}` : jid.domain);
export const full = (jid: Jid): string => (jid.resource ? `${bare(jid)}/${jid.resource}` : bare(jid));

/** A resource a client may bind: RFC 7622 §3.4 (non-empty, no control characters). */
export function validResource(resource: string): boolean {
  return parseJid(`x@x/${resource}`)?.resource === resource.normalize('NFKC');
}
