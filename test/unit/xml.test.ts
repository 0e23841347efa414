import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Element, MAX_ELEMENT_DEPTH, type ParsedFrame, parseFrame, xml } from '../../lib/xml.ts';

function elementsOf(frame: ParsedFrame): Element[] {
  if (frame.kind !== 'elements') assert.fail(`expected elements, got ${JSON.stringify(frame)}`);
  return frame.elements;
}

const strings = (frame: ParsedFrame) => elementsOf(frame).map((element) => element.toString());

describe('parseFrame: well-formed frames', () => {
  test('one element', () => {
    const frame = parseFrame(
      '<message xmlns="jabber:client" to="bob@example.com" type="chat"><body>hi</body></message>',
    );
    const [message] = elementsOf(frame);
    assert.equal(
      message?.toString(),
      '<message xmlns="jabber:client" to="bob@example.com" type="chat"><body>hi</body></message>',
    );
    assert.equal(message?.parent, null);
    assert.equal(message?.getChildText('body'), 'hi');
  });

  test('two elements in one frame are both returned, in order', () => {
    const frame = parseFrame('<iq id="1" type="get"/>\n  <presence/>');
    assert.deepEqual(strings(frame), ['<iq id="1" type="get"/>', '<presence/>']);
    for (const element of elementsOf(frame)) assert.equal(element.parent, null);
  });

  test('the framing open element', () => {
    const frame = parseFrame(
      '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>',
    );
    assert.deepEqual(strings(frame), [
      '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>',
    ]);
  });

  test('whitespace around elements is allowed', () => {
    assert.deepEqual(strings(parseFrame('  \r\n\t<a/>\n')), ['<a/>']);
  });

  test('an XML declaration prefix is allowed', () => {
    assert.deepEqual(strings(parseFrame('<?xml version="1.0"?><a/>')), ['<a/>']);
    assert.deepEqual(strings(parseFrame("\n<?xml version='1.0' encoding='UTF-8'?>\n<a/>")), ['<a/>']);
  });

  test('predefined and numeric entities are allowed and decoded', () => {
    const [element] = elementsOf(parseFrame('<a x="&quot;&apos;">&lt;&gt;&amp;&#65;&#x42;&#x263a;</a>'));
    assert.equal(element?.getText(), '<>&AB\u263a');
    assert.equal(element?.attrs.x, '"\'');
  });

  test('CDATA may contain <!-- and other markup', () => {
    const [element] = elementsOf(parseFrame('<a><![CDATA[<!-- not a comment --> <?pi?> &foo;]]></a>'));
    assert.equal(element?.getText(), '<!-- not a comment --> <?pi?> &foo;');
  });
});

describe('parseFrame: empty frames', () => {
  for (const text of ['', ' ', '\r\n\t ']) {
    test(`${JSON.stringify(text)} is empty`, () => {
      assert.deepEqual(parseFrame(text), { kind: 'empty' });
    });
  }
});

describe('parseFrame: malformed frames', () => {
  const malformed: readonly string[] = [
    '<a>',
    '<a></b>',
    '<a><b></a>',
    '<a/>text',
    'text<a/>',
    '<a/>text<b/>',
    'just text',
    '</a>',
    '<a/><',
    '<a>1 < 2</a>',
    '<a b=c/>',
    '<a><![CDATA[unterminated</a>',
    // ltx's own parser forgives these; saxes does not.
    '<a></b></a>',
    '<a/></a>',
    '<a><b></b></a></a>',
    '<a b="1" b="2"/>',
    '<a x="<"/>',
    '<1a/>',
    '<a>]]></a>',
    '<a>AT&T</a>',
  ];
  for (const text of malformed) {
    test(JSON.stringify(text), () => {
      assert.equal(parseFrame(text).kind, 'malformed');
    });
  }

  test('illegal character references are malformed', () => {
    assert.equal(parseFrame('<a>&#0;</a>').kind, 'malformed');
    assert.equal(parseFrame('<a>&#xD800;</a>').kind, 'malformed');
  });
});

describe('parseFrame: restricted XML (RFC 6120 §11.1)', () => {
  const restricted: readonly [string, string][] = [
    ['<!DOCTYPE a><a/>', 'DTD'],
    ['<!doctype a><a/>', 'DTD'],
    ['<!ENTITY x "y"><a/>', 'entity declaration'],
    ['<a><!-- comment --></a>', 'comment'],
    ['<!-- comment --><a/>', 'comment'],
    ['<a/><?pi data?>', 'processing instruction'],
    ['<a><?pi data?></a>', 'processing instruction'],
    ['<?xml-stylesheet href="x"?><a/>', 'processing instruction'],
    ['<a>&foo;</a>', 'entity reference'],
    ['<a b="&foo;"/>', 'entity reference'],
    ['<a>&nbsp;</a>', 'entity reference'],
  ];
  for (const [text, reason] of restricted) {
    test(JSON.stringify(text), () => {
      assert.deepEqual(parseFrame(text), { kind: 'restricted', reason });
    });
  }

  test('a second XML declaration is a processing instruction', () => {
    assert.equal(parseFrame('<?xml version="1.0"?><a/><?xml version="1.0"?>').kind, 'restricted');
  });

  test('a comment after CDATA is still restricted', () => {
    assert.equal(parseFrame('<a><![CDATA[x]]><!-- c --></a>').kind, 'restricted');
  });
});

describe('xml()', () => {
  test('drops falsy children and undefined attributes', () => {
    const element = xml(
      'a',
      { x: '1', gone: undefined, n: 0, empty: '' },
      'text',
      false,
      null,
      undefined,
      xml('b', null),
      xml('c'),
    );
    assert.equal(element.toString(), '<a x="1" n="0" empty="">text<b/><c/></a>');
    assert.ok(!('gone' in element.attrs));
    assert.equal(element.getChildElements().length, 2);
  });

  test('escapes text and attribute values', () => {
    assert.equal(xml('a', { q: '"<&>' }, '<&>').toString(), '<a q="&quot;&lt;&amp;&gt;">&lt;&amp;&gt;</a>');
  });

  test('children are attached to the new element', () => {
    const child = xml('b');
    const parent = xml('a', {}, child);
    assert.equal(child.parent, parent);
  });

  test('what xml() builds, parseFrame reads back', () => {
    const built = xml('message', { xmlns: 'jabber:client', id: 'm1' }, xml('body', {}, 'a & b < c'));
    const [parsed] = elementsOf(parseFrame(built.toString()));
    assert.equal(parsed?.toString(), built.toString());
  });
});

describe('parseFrame: nesting depth', () => {
  const nested = (depth: number) => `${'<a>'.repeat(depth)}${'</a>'.repeat(depth)}`;

  test(`${MAX_ELEMENT_DEPTH} levels are accepted`, () => {
    assert.equal(parseFrame(nested(MAX_ELEMENT_DEPTH)).kind, 'elements');
  });

  test('one level more is refused', () => {
    assert.equal(parseFrame(nested(MAX_ELEMENT_DEPTH + 1)).kind, 'too-deep');
  });

  test('10,000 levels are refused, closed or not', () => {
    for (const text of [nested(10_000), '<message>'.repeat(10_000)]) {
      assert.deepEqual(parseFrame(text), {
        kind: 'too-deep',
        reason: `elements are nested at most ${MAX_ELEMENT_DEPTH} deep`,
      });
    }
  });

  test('depth counts open elements, not elements seen', () => {
    const wide = `<a>${'<b><c/></b>'.repeat(1000)}</a>`;
    assert.equal(parseFrame(wide).kind, 'elements');
  });
});
