import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bare, full, type Jid, parseJid, validResource } from '../../lib/jid.ts';

function parsed(text: string): Jid {
  const jid = parseJid(text);
  assert.ok(jid, `${JSON.stringify(text)} should parse`);
  return jid;
}

const parts = (jid: Jid) => [jid.local, jid.domain, jid.resource];

describe('parseJid: valid addresses', () => {
  test('local@domain/resource', () => {
    const jid = parsed('alice@example.com/phone');
    assert.deepEqual(parts(jid), ['alice', 'example.com', 'phone']);
    assert.equal(bare(jid), 'alice@example.com');
    assert.equal(full(jid), 'alice@example.com/phone');
  });

  test('local@domain', () => {
    const jid = parsed('alice@example.com');
    assert.deepEqual(parts(jid), ['alice', 'example.com', undefined]);
    assert.equal(bare(jid), 'alice@example.com');
    assert.equal(full(jid), 'alice@example.com');
  });

  test('domain alone', () => {
    const jid = parsed('example.com');
    assert.deepEqual(parts(jid), [undefined, 'example.com', undefined]);
    assert.equal(bare(jid), 'example.com');
    assert.equal(full(jid), 'example.com');
  });

  test('domain/resource', () => {
    const jid = parsed('example.com/admin');
    assert.deepEqual(parts(jid), [undefined, 'example.com', 'admin']);
    assert.equal(bare(jid), 'example.com');
    assert.equal(full(jid), 'example.com/admin');
  });

  test('lowercases local and domain but not resource', () => {
    const jid = parsed('Alice@Example.COM/Phone Home');
    assert.deepEqual(parts(jid), ['alice', 'example.com', 'Phone Home']);
    assert.equal(full(jid), 'alice@example.com/Phone Home');
  });

  test('the resource may contain @ and /', () => {
    assert.deepEqual(parts(parsed('a@b/c@d/e')), ['a', 'b', 'c@d/e']);
    assert.deepEqual(parts(parsed('b/r@x')), [undefined, 'b', 'r@x']);
  });

  test('a trailing dot on the domain is removed', () => {
    assert.equal(full(parsed('a@example.com./r')), 'a@example.com/r');
  });

  test('width variants are normalised (NFKC)', () => {
    assert.equal(bare(parsed('\uff21lice@example.com')), 'alice@example.com');
  });

  test('parts of exactly 1023 bytes are allowed', () => {
    const long = 'a'.repeat(1023);
    assert.equal(parsed(`${long}@b`).local, long);
    assert.equal(parsed(long).domain, long);
    assert.equal(parsed(`a@b/${long}`).resource, long);
  });
});

describe('parseJid: invalid addresses', () => {
  const invalid: readonly string[] = [
    '',
    '@b',
    'a@',
    'a@b/',
    '@',
    '/r',
    'a@/r',
    'a b@example.com',
    'a"b@example.com',
    'a<b@example.com',
    'a>b@example.com',
    "a'b@example.com",
    'a&b@example.com',
    'a:b@example.com',
    'a\u0000b@example.com',
    'a@b@example.com',
    'a@exa mple.com',
    'a@.example.com',
    '.',
    'a@example.com/r\u0007',
  ];
  for (const text of invalid) {
    test(JSON.stringify(text), () => {
      assert.equal(parseJid(text), undefined);
    });
  }

  test('parts longer than 1023 bytes', () => {
    const long = 'a'.repeat(1024);
    assert.equal(parseJid(`${long}@example.com`), undefined);
    assert.equal(parseJid(`a@${long}`), undefined);
    assert.equal(parseJid(`a@example.com/${long}`), undefined);
  });

  test('length is counted in UTF-8 bytes, not characters', () => {
    assert.equal(parseJid(`a@example.com/${'\u00e9'.repeat(512)}`), undefined);
    assert.equal(parsed(`a@example.com/${'\u00e9'.repeat(511)}`).resource, '\u00e9'.repeat(511));
    assert.equal(parseJid(`${'\u00e9'.repeat(512)}@example.com`), undefined);
  });
});

describe('validResource', () => {
  test('accepts ordinary resources', () => {
    for (const resource of ['phone', 'Phone Home', 'a/b', 'a@b', '\u03a9', 'x'.repeat(1023)]) {
      assert.equal(validResource(resource), true, resource);
    }
  });

  test('rejects empty, control characters and over-long resources', () => {
    for (const resource of ['', 'a\u0000', 'a\u0007b', 'line\nbreak', 'x'.repeat(1024)]) {
      assert.equal(validResource(resource), false, JSON.stringify(resource));
    }
  });
});

test('domain labels must not be empty or start or end with a hyphen', () => {
  for (const text of ['a@b..c', 'a@-b', 'a@b-', 'a@.b']) assert.equal(parseJid(text), undefined, text);
  assert.equal(parseJid('a@my-host.example')?.domain, 'my-host.example');
});
