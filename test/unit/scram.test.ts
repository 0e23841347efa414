import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  decoyKeys,
  deriveKeys,
  finishExchange,
  makeCredentials,
  parseClientFirst,
  ScramError,
  type ScramExchange,
  type ScramHash,
  startExchange,
  verifyPassword,
} from '../../lib/scram.ts';

// The client's side of RFC 5802 §3, written independently of lib/scram.ts.
const algorithm = (hash: ScramHash) => (hash === 'SHA-1' ? 'sha1' : 'sha256');
const keyLength = (hash: ScramHash) => (hash === 'SHA-1' ? 20 : 32);

interface ClientFinal {
  /** client-final-message, proof included. */
  readonly message: string;
  /** The server-final-message the client expects back. */
  readonly serverFinal: string;
  /** Base64 ClientProof alone. */
  readonly proof: string;
}

function clientFinal(
  hash: ScramHash,
  password: string,
  exchange: Pick<ScramExchange, 'gs2Header' | 'clientFirstBare' | 'serverFirst' | 'nonce'>,
  salt: string,
  iterations: number,
): ClientFinal {
  const salted = pbkdf2Sync(
    password,
    Buffer.from(salt, 'base64'),
    iterations,
    keyLength(hash),
    algorithm(hash),
  );
  const clientKey = createHmac(algorithm(hash), salted).update('Client Key').digest();
  const storedKey = createHash(algorithm(hash)).update(clientKey).digest();
  const serverKey = createHmac(algorithm(hash), salted).update('Server Key').digest();
  const withoutProof = `c=${Buffer.from(exchange.gs2Header).toString('base64')},r=${exchange.nonce}`;
  const authMessage = `${exchange.clientFirstBare},${exchange.serverFirst},${withoutProof}`;
  const clientSignature = createHmac(algorithm(hash), storedKey).update(authMessage).digest();
  const proof = Buffer.alloc(clientKey.length);
  for (let index = 0; index < clientKey.length; index++) {
    proof[index] = (clientKey[index] ?? 0) ^ (clientSignature[index] ?? 0);
  }
  const serverSignature = createHmac(algorithm(hash), serverKey).update(authMessage).digest();
  return {
    message: `${withoutProof},p=${proof.toString('base64')}`,
    serverFinal: `v=${serverSignature.toString('base64')}`,
    proof: proof.toString('base64'),
  };
}

const scramError = (condition: ScramError['condition']) => (error: unknown) =>
  error instanceof ScramError && error.condition === condition;

interface Vector {
  readonly hash: ScramHash;
  readonly clientFirst: string;
  readonly serverNonce: string;
  readonly salt: string;
  readonly serverFirst: string;
  readonly clientFinal: string;
  readonly proof: string;
  readonly serverFinal: string;
}

const VECTORS: readonly Vector[] = [
  {
    // RFC 5802 §5
    hash: 'SHA-1',
    clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
    serverNonce: '3rfcNHYJY1ZVvWVs7j',
    salt: 'QSXCR+Q6sek8bf92',
    serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
    clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    proof: 'v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
  },
  {
    // RFC 7677 §3
    hash: 'SHA-256',
    clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
    serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
    serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    clientFinal:
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    proof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
  },
];

for (const vector of VECTORS) {
  describe(`SCRAM-${vector.hash} RFC test vector`, () => {
    const keys = deriveKeys(vector.hash, 'pencil', Buffer.from(vector.salt, 'base64'), 4096);
    const first = parseClientFirst(vector.clientFirst);
    const exchange = startExchange(vector.hash, first, keys, vector.serverNonce);

    test('parses the client-first message', () => {
      assert.equal(first.gs2Header, 'n,,');
      assert.equal(first.authzid, undefined);
      assert.equal(first.username, 'user');
      assert.equal(first.clientFirstBare, vector.clientFirst.slice(3));
      assert.equal(first.clientNonce, vector.clientFirst.slice(vector.clientFirst.indexOf('r=') + 2));
    });

    test('derived keys keep the salt and iteration count', () => {
      assert.equal(keys.salt, vector.salt);
      assert.equal(keys.iterations, 4096);
    });

    test('server-first message equals the RFC', () => {
      assert.equal(exchange.serverFirst, vector.serverFirst);
      assert.equal(exchange.nonce, first.clientNonce + vector.serverNonce);
      assert.equal(exchange.username, 'user');
      assert.equal(exchange.hash, vector.hash);
    });

    test('the test client reproduces the RFC client-final message', () => {
      const final = clientFinal(vector.hash, 'pencil', exchange, vector.salt, 4096);
      assert.equal(final.proof, vector.proof);
      assert.equal(final.message, vector.clientFinal);
      assert.equal(final.serverFinal, vector.serverFinal);
    });

    test('finishExchange accepts the RFC proof and returns the RFC server-final', () => {
      assert.equal(finishExchange(exchange, vector.clientFinal), vector.serverFinal);
    });

    test('a wrong proof is not-authorized', () => {
      const wrong = clientFinal(vector.hash, 'pencil!', exchange, vector.salt, 4096);
      assert.throws(() => finishExchange(exchange, wrong.message), scramError('not-authorized'));
      const flipped = Buffer.from(vector.proof, 'base64');
      flipped[0] = (flipped[0] ?? 0) ^ 1;
      const withoutProof = vector.clientFinal.slice(0, vector.clientFinal.lastIndexOf(',p='));
      assert.throws(
        () => finishExchange(exchange, `${withoutProof},p=${flipped.toString('base64')}`),
        scramError('not-authorized'),
      );
    });

    test('a proof of the wrong length is not-authorized', () => {
      const withoutProof = vector.clientFinal.slice(0, vector.clientFinal.lastIndexOf(',p='));
      const short = Buffer.alloc(keyLength(vector.hash) - 4).toString('base64');
      assert.throws(
        () => finishExchange(exchange, `${withoutProof},p=${short}`),
        scramError('not-authorized'),
      );
    });

    test('a nonce mismatch is malformed-request', () => {
      const other = { ...exchange, nonce: `${exchange.nonce}x` };
      const final = clientFinal(vector.hash, 'pencil', other, vector.salt, 4096);
      assert.throws(() => finishExchange(exchange, final.message), scramError('malformed-request'));
      assert.throws(
        () => finishExchange(exchange, vector.clientFinal.replace(',r=', ',r=X')),
        scramError('malformed-request'),
      );
    });

    test('a channel-binding mismatch is malformed-request', () => {
      const other = { ...exchange, gs2Header: 'y,,' };
      const final = clientFinal(vector.hash, 'pencil', other, vector.salt, 4096);
      assert.throws(() => finishExchange(exchange, final.message), scramError('malformed-request'));
      const missing = vector.clientFinal.slice('c=biws,'.length);
      assert.throws(() => finishExchange(exchange, missing), scramError('malformed-request'));
    });

    test('a missing proof is malformed-request', () => {
      const withoutProof = vector.clientFinal.slice(0, vector.clientFinal.lastIndexOf(',p='));
      assert.throws(() => finishExchange(exchange, withoutProof), scramError('malformed-request'));
    });
  });
}

describe('parseClientFirst', () => {
  test('rejects channel binding (p=)', () => {
    assert.throws(() => parseClientFirst('p=tls-unique,,n=user,r=abc'), scramError('malformed-request'));
  });

  test('rejects an unknown channel-binding flag', () => {
    assert.throws(() => parseClientFirst('x,,n=user,r=abc'), scramError('malformed-request'));
    assert.throws(() => parseClientFirst('nn,,n=user,r=abc'), scramError('malformed-request'));
  });

  test('rejects a missing GS2 header', () => {
    assert.throws(() => parseClientFirst('n=user,r=abc'), scramError('malformed-request'));
  });

  test('rejects bad escapes in the name', () => {
    assert.throws(() => parseClientFirst('n,,n=us=er,r=x'), scramError('malformed-request'));
    assert.throws(() => parseClientFirst('n,,n=user=2,r=x'), scramError('malformed-request'));
    assert.throws(() => parseClientFirst('n,a=ad=min,n=user,r=x'), scramError('malformed-request'));
  });

  test('rejects a missing or empty name or nonce', () => {
    assert.throws(() => parseClientFirst('n,,n=user'), scramError('malformed-request'));
    assert.throws(() => parseClientFirst('n,,n=user,r='), scramError('malformed-request'));
    assert.throws(() => parseClientFirst('n,,r=abc'), scramError('malformed-request'));
    assert.throws(() => parseClientFirst('n,,n=,r=abc'), scramError('malformed-request'));
  });

  test('rejects a nonce with unprintable characters', () => {
    assert.throws(() => parseClientFirst('n,,n=user,r=ab c'), scramError('malformed-request'));
    assert.throws(() => parseClientFirst('n,,n=user,r=abc\u00e9'), scramError('malformed-request'));
  });

  test('rejects mandatory extensions (m=)', () => {
    assert.throws(() => parseClientFirst('n,,m=ext,n=user,r=abc'), scramError('malformed-request'));
  });

  test('rejects attributes that are not name=value', () => {
    assert.throws(() => parseClientFirst('n,,n=user,r=abc,junk'), scramError('malformed-request'));
  });

  test('decodes =2C and =3D in the name', () => {
    const first = parseClientFirst('n,,n=a=2Cb=3Dc,r=abc');
    assert.equal(first.username, 'a,b=c');
    assert.equal(first.clientFirstBare, 'n=a=2Cb=3Dc,r=abc');
  });

  test('decodes an authzid and keeps it in the GS2 header', () => {
    const first = parseClientFirst('n,a=admin=2Cx=3Dy,n=user,r=abc');
    assert.equal(first.authzid, 'admin,x=y');
    assert.equal(first.gs2Header, 'n,a=admin=2Cx=3Dy,');
    assert.equal(first.username, 'user');
  });
});

describe('SCRAM exchange', () => {
  const salt = Buffer.from('0123456789abcdef');

  test("a 'y,,' header round-trips as c=eSws", () => {
    const keys = deriveKeys('SHA-256', 'secret', salt, 4096);
    const first = parseClientFirst('y,,n=user,r=clientnonce');
    assert.equal(first.gs2Header, 'y,,');
    const exchange = startExchange('SHA-256', first, keys, 'servernonce');
    const final = clientFinal('SHA-256', 'secret', exchange, keys.salt, keys.iterations);
    assert.ok(final.message.startsWith('c=eSws,r=clientnonceservernonce,p='));
    assert.equal(finishExchange(exchange, final.message), final.serverFinal);
    // The same client claiming it saw no channel binding ("n,,") does not match.
    const downgraded = clientFinal('SHA-256', 'secret', { ...exchange, gs2Header: 'n,,' }, keys.salt, 4096);
    assert.throws(() => finishExchange(exchange, downgraded.message), scramError('malformed-request'));
  });

  test('an authzid header round-trips through channel binding', () => {
    const keys = deriveKeys('SHA-1', 'secret', salt, 4096);
    const first = parseClientFirst('n,a=admin,n=user,r=abc');
    const exchange = startExchange('SHA-1', first, keys, 'def');
    const final = clientFinal('SHA-1', 'secret', exchange, keys.salt, 4096);
    assert.ok(final.message.startsWith(`c=${Buffer.from('n,a=admin,').toString('base64')},`));
    assert.equal(finishExchange(exchange, final.message), final.serverFinal);
  });

  test('startExchange makes a random server nonce when none is given', () => {
    const keys = deriveKeys('SHA-1', 'secret', salt, 4096);
    const first = parseClientFirst('n,,n=user,r=abc');
    const one = startExchange('SHA-1', first, keys);
    const two = startExchange('SHA-1', first, keys);
    assert.ok(one.nonce.startsWith('abc') && one.nonce.length > 'abc'.length + 16);
    assert.notEqual(one.nonce, two.nonce);
    assert.equal(one.serverFirst, `r=${one.nonce},s=${keys.salt},i=4096`);
  });

  test('an exchange started with one hash rejects a proof computed with the other', () => {
    const keys = deriveKeys('SHA-256', 'secret', salt, 4096);
    const exchange = startExchange('SHA-256', parseClientFirst('n,,n=user,r=abc'), keys, 'def');
    const final = clientFinal('SHA-1', 'secret', exchange, keys.salt, 4096);
    assert.throws(() => finishExchange(exchange, final.message), scramError('not-authorized'));
  });
});

describe('stored credentials', () => {
  test('verifyPassword is true for the password and false otherwise', () => {
    const credentials = makeCredentials('pencil', 4096);
    for (const hash of ['SHA-1', 'SHA-256'] as const) {
      assert.equal(verifyPassword(hash, credentials[hash], 'pencil'), true);
      assert.equal(verifyPassword(hash, credentials[hash], 'Pencil'), false);
      assert.equal(verifyPassword(hash, credentials[hash], ''), false);
    }
  });

  test('verifyPassword checks against the RFC vector keys', () => {
    const keys = deriveKeys('SHA-1', 'pencil', Buffer.from('QSXCR+Q6sek8bf92', 'base64'), 4096);
    assert.equal(verifyPassword('SHA-1', keys, 'pencil'), true);
    assert.equal(verifyPassword('SHA-1', keys, 'pencil '), false);
  });

  test('makeCredentials makes both hashes with the iterations given', () => {
    for (const iterations of [4096, 5000]) {
      const credentials = makeCredentials('pencil', iterations);
      assert.deepEqual(Object.keys(credentials).sort(), ['SHA-1', 'SHA-256']);
      for (const [hash, length] of [
        ['SHA-1', 20],
        ['SHA-256', 32],
      ] as const) {
        const keys = credentials[hash];
        assert.equal(keys.iterations, iterations);
        assert.ok(keys.iterations >= 4096);
        assert.equal(Buffer.from(keys.salt, 'base64').length, 16);
        assert.equal(Buffer.from(keys.storedKey, 'base64').length, length);
        assert.equal(Buffer.from(keys.serverKey, 'base64').length, length);
        // The keys are those deriveKeys gives for the stored salt.
        assert.deepEqual(deriveKeys(hash, 'pencil', Buffer.from(keys.salt, 'base64'), iterations), keys);
      }
      assert.notEqual(credentials['SHA-1'].salt, credentials['SHA-256'].salt);
    }
  });

  test('makeCredentials never stores the password', () => {
    const credentials = makeCredentials('pencil', 4096);
    assert.ok(!JSON.stringify(credentials).includes('pencil'));
  });

  test('credentials from makeCredentials complete a full exchange', () => {
    const credentials = makeCredentials('pencil', 4096);
    for (const hash of ['SHA-1', 'SHA-256'] as const) {
      const keys = credentials[hash];
      const exchange = startExchange(hash, parseClientFirst('n,,n=user,r=abc'), keys);
      const final = clientFinal(hash, 'pencil', exchange, keys.salt, keys.iterations);
      assert.equal(finishExchange(exchange, final.message), final.serverFinal);
    }
  });
});

describe('decoyKeys', () => {
  const secret = Buffer.from('decoy secret');

  test('the same name and secret give the same salt', () => {
    for (const hash of ['SHA-1', 'SHA-256'] as const) {
      const one = decoyKeys(hash, 'nobody', secret, 4096);
      const two = decoyKeys(hash, 'nobody', secret, 4096);
      assert.equal(one.salt, two.salt);
      assert.equal(one.iterations, 4096);
      assert.equal(Buffer.from(one.salt, 'base64').length, 16);
    }
  });

  test('different names, secrets or hashes give different salts', () => {
    const base = decoyKeys('SHA-256', 'nobody', secret, 4096).salt;
    assert.notEqual(decoyKeys('SHA-256', 'somebody', secret, 4096).salt, base);
    assert.notEqual(decoyKeys('SHA-256', 'nobody', Buffer.from('other secret'), 4096).salt, base);
    assert.notEqual(decoyKeys('SHA-1', 'nobody', secret, 4096).salt, base);
  });

  test('no password matches decoy keys', () => {
    for (const hash of ['SHA-1', 'SHA-256'] as const) {
      const keys = decoyKeys(hash, 'nobody', secret, 4096);
      assert.equal(verifyPassword(hash, keys, ''), false);
      assert.equal(verifyPassword(hash, keys, 'pencil'), false);
      const exchange = startExchange(hash, parseClientFirst('n,,n=nobody,r=abc'), keys, 'def');
      const final = clientFinal(hash, 'pencil', exchange, keys.salt, keys.iterations);
      assert.throws(() => finishExchange(exchange, final.message), scramError('not-authorized'));
    }
  });
});
