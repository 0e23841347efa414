// XEP-0363 §5 and §11 (Security Considerations): what an uploaded file's URLs look like and how
// it is served. Shared by the slot handler (lib/upload.ts), the S3 adapter
// (lib/gateway/s3-uploads.ts), the CloudFront distribution (infra/uploads.ts) and the local
// system's file server (infra/local/uploads.ts), so that both places serve the same URLs with
// the same headers. No SDK here.
import { randomBytes } from 'node:crypto';
import { runInNewContext } from 'node:vm';

/** Every uploaded object's key starts here; the frames function may only presign PUTs under it. */
export const UPLOAD_PREFIX = 'uploads/';

/** A slot's PUT URL is valid this long (XEP-0363 §8 suggests a short time: nobody waits to upload). */
export const PUT_EXPIRY_SECONDS = 300;

/** Longest file name kept, in UTF-8 bytes (S3 keys are at most 1024). */
const MAX_NAME_BYTES = 255;

/**
 * A file's path under the prefix: `<key>/<name>`. The key is 128 random bits (base64url, 22
 * characters): the GET URL is a capability, and it names neither the user nor anything guessable.
 */
export function newFilePath(name: string): string {
  return `${randomBytes(16).toString('base64url')}/${name}`;
}

/** Why a file name is refused, or undefined when it is kept as it is (with its ending, §5). */
export function badFilename(name: string | undefined): string | undefined {
  if (name === undefined || name === '') return 'a filename is required';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES)
    return `a filename has at most ${MAX_NAME_BYTES} bytes`;
  if (name === '.' || name === '..') return 'not a file name';
  // Path separators and control characters (a header or a path could be split by them).
  if (/[/\\\p{Cc}\u2028\u2029]/u.test(name)) return 'a filename has no slashes or control characters';
  return undefined;
}

/** RFC 9110 §8.3.1 media type, parameters allowed (`audio/ogg; codecs=opus`). */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:\\s*;\\s*${TOKEN}=(?:${TOKEN}|"[^"\\\\\\r\\n]*"))*$`);

export function isMediaType(value: string): boolean {
  return value.length <= 255 && MEDIA_TYPE.test(value);
}

/** The SDK's path encoding (RFC 3986 unreserved kept), segment by segment. */
export function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(
        /[!'()*]/g,
        (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
      ),
    )
    .join('/');
}

/** The GET URL of the file at `path`: under `baseUrl` (no slash at its end needed). */
export function fileUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${encodePath(path)}`;
}

/**
 * The Content-Disposition a file is served with, from its Content-Type and the name in its URL:
 * `inline` only for types a browser shows without running anything (pictures, sound, video,
 * plain text), `attachment` for everything else (HTML, SVG, PDF...: a capability URL opened in
 * a browser must not run a page on the file host). The name goes in `filename*` (RFC 8187),
 * percent-encoded, so no character of it can end the header or add a parameter.
 *
 * Plain JavaScript in a string, because CloudFront runs it (cloudfront-js-2.0, a viewer-response
 * function, infra/uploads.ts) and the local file server evaluates the very same text.
 */
export const CONTENT_DISPOSITION_SOURCE = `
function contentDisposition(contentType, name) {
  var type = String(contentType || '').split(';')[0].trim().toLowerCase();
  var inline = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'text/plain'].indexOf(type) >= 0 ||
    /^(audio|video)\\/[a-z0-9.+-]+$/.test(type);
  var encoded = encodeURIComponent(name).replace(/['()*]/g, function (c) {
    return '%' + c.charCodeAt(0).toString(16).toUpperCase();
  });
  var fallback = name.replace(/[^A-Za-z0-9._-]/g, '_');
  return (inline ? 'inline' : 'attachment') + '; filename="' + fallback + '"; filename*=UTF-8\\'\\'' + encoded;
}`;

/** The CloudFront Function (viewer response): Content-Disposition from the URL's last segment. */
export const VIEWER_RESPONSE_SOURCE = `${CONTENT_DISPOSITION_SOURCE}
function handler(event) {
  var response = event.response;
  var uri = event.request.uri;
  var name = uri.slice(uri.lastIndexOf('/') + 1);
  try { name = decodeURIComponent(name); } catch (e) { name = 'file'; }
  var type = response.headers['content-type'] ? response.headers['content-type'].value : '';
  response.headers['content-disposition'] = { value: contentDisposition(type, name) };
  return response;
}`;

let compiled: ((contentType: string, name: string) => string) | undefined;

/** The same function as CloudFront runs it, for the local file server (compiled on first use). */
export function contentDisposition(contentType: string, name: string): string {
  compiled ??= runInNewContext(`${CONTENT_DISPOSITION_SOURCE}; contentDisposition`) as typeof compiled;
  return (compiled as (contentType: string, name: string) => string)(contentType, name);
}

/**
 * Headers on every file response (a CloudFront response headers policy on AWS): no sniffing of
 * another type than the one uploaded, and XEP-0363 §7's CORS so that web clients can PUT and GET.
 */
export const FILE_RESPONSE_HEADERS = {
  'x-content-type-options': 'nosniff',
  'access-control-allow-origin': '*',
} as const;

/** CORS for the PUT URL (S3's bucket CORS rule on AWS, infra/uploads.ts). */
export const UPLOAD_CORS = {
  allowedMethods: ['PUT', 'GET', 'HEAD'],
  allowedHeaders: ['content-type'],
  maxAgeSeconds: 3600,
} as const;
