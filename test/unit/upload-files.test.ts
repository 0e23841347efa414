// lib/upload-files.ts: the CloudFront Function (viewer response) gives a file the same
// Content-Disposition as the local file server, for awkward names and types; file names are
// refused exactly when they could split a path or a header.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runInNewContext } from 'node:vm';
import {
  badFilename,
  contentDisposition,
  encodePath,
  isMediaType,
  newFilePath,
  VIEWER_RESPONSE_SOURCE,
} from '../../lib/upload-files.ts';

/** The function as CloudFront runs it: its handler, on a viewer-response event. */
function cloudFront(uri: string, contentType?: string): Record<string, { value: string }> {
  const handler = runInNewContext(`${VIEWER_RESPONSE_SOURCE}; handler`) as (event: unknown) => {
    headers: Record<string, { value: string }>;
  };
  const headers = contentType ? { 'content-type': { value: contentType } } : {};
  return handler({ request: { uri }, response: { statusCode: 200, headers } }).headers;
}

describe('XEP-0363 file URLs and headers', () => {
  test('CloudFront and the local server give the same Content-Disposition', () => {
    for (const [name, type] of [
      ['photo.jpg', 'image/jpeg'],
      ['holiday photo (1).png', 'image/png'],
      ['voice.ogg', 'audio/ogg; codecs=opus'],
      ['clip.mp4', 'video/mp4'],
      ['página ünïcødé 🎉.txt', 'text/plain; charset=utf-8'],
      ['page"x.html', 'text/html'],
      ["quote'and;semi,colon.svg", 'image/svg+xml'],
      ['no-type.bin', ''],
    ] as const) {
      const path = encodePath(newFilePath(name));
      const header = cloudFront(`/${path}`, type)['content-disposition']?.value;
      assert.equal(header, contentDisposition(type, name), name);
      // The name's characters cannot end the header or add a parameter.
      const [, encoded] = /filename\*=UTF-8''(.*)$/.exec(header ?? '') ?? [];
      assert.match(encoded ?? '', /^[A-Za-z0-9!#$&+\-.^_`|~%]+$/, name);
      assert.equal(decodeURIComponent(encoded ?? ''), name);
    }
  });

  test('inline only for pictures, sound, video and plain text', () => {
    assert.match(contentDisposition('image/png', 'a.png'), /^inline;/);
    assert.match(contentDisposition('AUDIO/MP4', 'a.m4a'), /^inline;/);
    for (const type of ['text/html', 'image/svg+xml', 'application/pdf', 'application/octet-stream', ''])
      assert.match(contentDisposition(type, 'a'), /^attachment;/, type);
  });

  test('a malformed name in the URL is served as "file", not an error', () => {
    assert.match(
      cloudFront('/abc/%E0%A4%A', 'image/png')['content-disposition']?.value ?? '',
      /filename\*=UTF-8''file$/,
    );
  });

  test('file names: kept with their ending; refused when they could split a path or a header', () => {
    for (const good of ['a.jpg', 'holiday photo (1).jpeg', 'ünï.txt', '.profile', 'x'.repeat(255)])
      assert.equal(badFilename(good), undefined, good);
    for (const bad of [
      undefined,
      '',
      '.',
      '..',
      'a/b',
      'a\\b',
      'a\nb',
      'a\u0000b',
      'a\u2028b',
      'é'.repeat(128),
    ])
      assert.ok(badFilename(bad), JSON.stringify(bad));
  });

  test('keys are 128 random bits; media types are checked', () => {
    const keys = new Set(Array.from({ length: 100 }, () => newFilePath('a').split('/')[0]));
    assert.equal(keys.size, 100);
    for (const key of keys) assert.match(key ?? '', /^[A-Za-z0-9_-]{22}$/);
    for (const good of ['image/png', 'audio/ogg; codecs=opus', 'text/plain;charset="utf-8"'])
      assert.ok(isMediaType(good), good);
    for (const bad of ['png', 'image/', 'a b/c', 'text/plain\r\nx: y']) assert.ok(!isMediaType(bad), bad);
  });
});
