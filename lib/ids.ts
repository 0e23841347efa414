// Server-assigned identifiers.
import { randomBytes } from 'node:crypto';

let lastMillis = 0;
let counter = 0;

/**
 * A time-ordered id: sorts in the order this process made them. One connection's frames
 * are handled one after another (in one container or the next, later in time), so the
 * ids of one sender's burst sort in send order. Also used as the XEP-0359 stanza id.
 */
export function sequenceId(now: number): string {
  if (now > lastMillis) {
    lastMillis = now;
    counter = 0;
  } else {
    counter++;
  }
  const time = lastMillis.toString(36).padStart(9, '0');
  const count = counter.toString(36).padStart(4, '0');
  return `${time}${count}${randomBytes(4).toString('hex')}`;
}

/** Sorts before every sequenceId made at `now` or later, and after every one made before. */
export const sequenceFloor = (now: number): string => now.toString(36).padStart(9, '0');

/** An id for a stanza the server originates. */
export const stanzaId = () => randomBytes(9).toString('base64url');
