// RFC 5802 (SCRAM) and RFC 7677 (SCRAM-SHA-256): keys kept instead of passwords, and
// the server's side of the exchange. Only StoredKey and ServerKey are ever stored.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export type ScramHash = 'SHA-1' | 'SHA-256';
export const SCRAM_HASHES: readonly ScramHash[] = ['SHA-1', 'SHA-256'];

export interface ScramKeys {
  /** Base64. */
  readonly salt: string;
  readonly iterations: number;
  /** Base64 of H(ClientKey). */
  readonly storedKey: string;
  /** Base64 of HMAC(SaltedPassword, "Server Key"). */
  readonly serverKey: string;
}

export type ScramCredentials = Readonly<Record<ScramHash, ScramKeys>>;

const nodeHash = (hash: ScramHash) => (hash === 'SHA-1' ? 'sha1' : 'sha256');
const hashLength = (hash: ScramHash) => (hash === 'SHA-1' ? 20 : 32);
const hmac = (hash: ScramHash, key: Buffer, data: string) =>
  createHmac(nodeHash(hash), key).update(data).digest();
const digest = (hash: ScramHash, data: Buffer) => createHash(nodeHash(hash)).update(data).digest();

/**
 * RFC 5802 §2.2 Normalize(): SASLprep (RFC 4013). NFKC is its core; the prohibited
 * characters are rare enough in passwords that we do not reject them.
 */
export const normalizePassword = (password: string) => password.normalize('NFKC');

function saltedPassword(hash: ScramHash, password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(normalizePassword(password), salt, iterations, hashLength(hash), nodeHash(hash));
}

export function deriveKeys(hash: ScramHash, password: string, salt: Buffer, iterations: number): ScramKeys {
  const salted = saltedPassword(hash, password, salt, iterations);
  return {
    salt: salt.toString('base64'),
    iterations,
    storedKey: digest(hash, hmac(hash, salted, 'Client Key')).toString('base64'),
    serverKey: hmac(hash, salted, 'Server Key').toString('base64'),
  };
}

export function makeCredentials(password: string, iterations: number): ScramCredentials {
  return {
    'SHA-1': deriveKeys('SHA-1', password, randomBytes(16), iterations),
    'SHA-256': deriveKeys('SHA-256', password, randomBytes(16), iterations),
  };
}

const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);

/** Checks a password (SASL PLAIN) against stored keys without ever storing it. */
export function verifyPassword(hash: ScramHash, keys: ScramKeys, password: string): boolean {
  const expected = deriveKeys(hash, password, Buffer.from(keys.salt, 'base64'), keys.iterations);
  return sameBytes(Buffer.from(expected.storedKey, 'base64'), Buffer.from(keys.storedKey, 'base64'));
}

/**
 * Keys for a user who does not exist: a salt that stays the same for the same name
 * (so asking twice reveals nothing) and keys no password matches.
 */
export function decoyKeys(hash: ScramHash, username: string, secret: Buffer, iterations: number): ScramKeys {
  const seed = createHmac('sha256', secret).update(`${hash}\0${username}`).digest();
  return {
    salt: seed.subarray(0, 16).toString('base64'),
    iterations,
    storedKey: randomBytes(hashLength(hash)).toString('base64'),
    serverKey: randomBytes(hashLength(hash)).toString('base64'),
  };
}

/** The state kept between the client's first and final messages. */
export interface ScramExchange {
  readonly hash: ScramHash;
  readonly username: string;
  readonly gs2Header: string;
  readonly clientFirstBare: string;
  readonly serverFirst: string;
  readonly nonce: string;
  readonly keys: ScramKeys;
}

export interface ClientFirst {
  readonly gs2Header: string;
  readonly authzid?: string;
  readonly username: string;
  readonly clientNonce: string;
  readonly clientFirstBare: string;
}

export class ScramError extends Error {
  constructor(
    readonly condition: 'malformed-request' | 'not-authorized' | 'invalid-authzid' | 'encryption-required',
    message: string,
  ) {
    super(message);
  }
}

/** RFC 5802 §5.1 saslname: "=2C" is "," and "=3D" is "="; any other "=" is an error. */
function decodeSaslName(value: string): string {
  if (/=(?!2C|3D)/.test(value)) throw new ScramError('malformed-request', 'bad escape in name');
  return value.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

function attributes(message: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const part of message.split(',')) {
    const match = /^([A-Za-z])=(.*)$/s.exec(part);
    if (!match?.[1] || match[2] === undefined) throw new ScramError('malformed-request', 'bad attribute');
    if (!result.has(match[1])) result.set(match[1], match[2]);
  }
  return result;
}

const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

export function parseClientFirst(message: string): ClientFirst {
  const match = /^([nyp][^,]*),(a=[^,]*)?,(.*)$/s.exec(message);
  if (!match?.[1] || match[3] === undefined) throw new ScramError('malformed-request', 'bad GS2 header');
  const cbFlag = match[1];
  if (cbFlag.startsWith('p')) {
    throw new ScramError('malformed-request', 'channel binding is not offered over WebSocket');
  }
  if (cbFlag !== 'n' && cbFlag !== 'y') throw new ScramError('malformed-request', 'bad channel binding flag');
  const authzid = match[2] ? decodeSaslName(match[2].slice(2)) : undefined;
  const clientFirstBare = match[3];
  if (clientFirstBare.startsWith('m=')) throw new ScramError('malformed-request', 'unsupported extension');
  const attrs = attributes(clientFirstBare);
  const username = attrs.get('n');
  const clientNonce = attrs.get('r');
  if (!username || !clientNonce || !PRINTABLE_NONCE.test(clientNonce)) {
    throw new ScramError('malformed-request', 'missing name or nonce');
  }
  return {
    gs2Header: `${cbFlag},${match[2] ?? ''},`,
    authzid,
    username: decodeSaslName(username),
    clientNonce,
    clientFirstBare,
  };
}

export function startExchange(
  hash: ScramHash,
  clientFirst: ClientFirst,
  keys: ScramKeys,
  serverNonce: string = randomBytes(18).toString('base64'),
): ScramExchange {
  const nonce = clientFirst.clientNonce + serverNonce;
  return {
    hash,
    username: clientFirst.username,
    gs2Header: clientFirst.gs2Header,
    clientFirstBare: clientFirst.clientFirstBare,
    serverFirst: `r=${nonce},s=${keys.salt},i=${keys.iterations}`,
    nonce,
    keys,
  };
}

/** RFC 5802 §3: verifies ClientProof; returns the server-final message (`v=...`). */
export function finishExchange(exchange: ScramExchange, clientFinal: string): string {
  const proofIndex = clientFinal.lastIndexOf(',p=');
  if (proofIndex < 0) throw new ScramError('malformed-request', 'missing proof');
  const withoutProof = clientFinal.slice(0, proofIndex);
  const attrs = attributes(withoutProof);
  const channelBinding = attrs.get('c');
  if (
    channelBinding === undefined ||
    Buffer.from(channelBinding, 'base64').toString() !== exchange.gs2Header
  ) {
    throw new ScramError('malformed-request', 'channel binding mismatch');
  }
  if (attrs.get('r') !== exchange.nonce) throw new ScramError('malformed-request', 'nonce mismatch');
  const proof = Buffer.from(clientFinal.slice(proofIndex + 3), 'base64');
  const hash = exchange.hash;
  const authMessage = `${exchange.clientFirstBare},${exchange.serverFirst},${withoutProof}`;
  const storedKey = Buffer.from(exchange.keys.storedKey, 'base64');
  const clientSignature = hmac(hash, storedKey, authMessage);
  if (proof.length !== clientSignature.length) throw new ScramError('not-authorized', 'bad proof');
  const clientKey = Buffer.alloc(proof.length);
  for (let index = 0; index < proof.length; index++) {
    clientKey[index] = (proof[index] ?? 0) ^ (clientSignature[index] ?? 0);
  }
  if (!sameBytes(digest(hash, clientKey), storedKey)) throw new ScramError('not-authorized', 'bad proof');
  const serverSignature = hmac(hash, Buffer.from(exchange.keys.serverKey, 'base64'), authMessage);
  return `v=${serverSignature.toString('base64')}`;
}
