// XEP-0363 files on the local system: the part of S3 a slot's PUT URL uses (a presigned
// PutObject, path-style: PUT /<bucket>/uploads/<key>/<name>?X-Amz-…), and the part of
// CloudFront its GET URL uses (GET /<key>/<name>), on the emulator's HTTP port. The URLs come from
// the same code as on AWS (lib/gateway/s3-uploads.ts and the SDK's presigner, against this
// endpoint); this checks what S3 checks of them: the SigV4 signature (recomputed with the SDK's
// own signer), the expiry, and that the body has the signed Content-Length and Content-Type.
// GET answers with the headers CloudFront adds (lib/upload-files.ts, the same Content-Disposition
// function). Files live under `dir`, one folder per key, and go after `retentionDays` (S3's
// lifecycle rule on AWS).
import { createHash, createHmac } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  contentDisposition,
  FILE_RESPONSE_HEADERS,
  UPLOAD_CORS,
  UPLOAD_PREFIX,
} from '../../lib/upload-files.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './dynamodb.ts';

export interface LocalUploadsOptions {
  /** Where files are kept (`.data/uploads`, or a temporary folder for a system in memory). */
  readonly dir: string;
  /** The bucket name the PUT URLs carry (the functions' UPLOAD_BUCKET). */
  readonly bucket: string;
  readonly retentionDays: number;
  /** The secret the functions sign with locally (any access key id is accepted). */
  readonly secretAccessKey?: string;
  readonly now?: () => number;
}

interface Meta {
  readonly name: string;
  readonly contentType: string;
  readonly size: number;
  readonly storedAt: number;
}

/** The random part of a file's path (lib/upload-files.ts newFilePath). */
const KEY = /^[A-Za-z0-9_-]{22}$/;

/** The bucket name locally (UPLOAD_BUCKET of the in-process functions, the stand-in for the stack's). */
export const LOCAL_UPLOAD_BUCKET = 'uploads';
const HOUR_MS = 3_600_000;

/** node:crypto in the shape the SDK's signer takes (a hash, or an HMAC with a secret). */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

class S3Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class LocalUploads {
  /** The clock expiry and retention are checked by (a test may move it on). */
  now: () => number;
  private sweeper?: NodeJS.Timeout;

  constructor(private readonly options: LocalUploadsOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Creates the folder and removes what outlived the retention, now and every hour. */
  async start(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    await this.sweep();
    this.sweeper = setInterval(() => void this.sweep().catch(() => {}), HOUR_MS);
    this.sweeper.unref();
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  /** Deletes files stored more than retentionDays ago (S3's lifecycle expiration). */
  async sweep(): Promise<number> {
    const before = this.now() - this.options.retentionDays * 24 * HOUR_MS;
    let removed = 0;
    for (const key of await readdir(this.options.dir).catch(() => [] as string[])) {
      const meta = await this.meta(key);
      if (meta && meta.storedAt >= before) continue;
      await rm(join(this.options.dir, key), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  /** Answers PUT and GET of files and their CORS preflights; false for any other request. */
  async answer(request: IncomingMessage, response: ServerResponse): Promise<boolean> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const put = this.putTarget(url.pathname);
    const get = this.getTarget(url.pathname);
    if (!put && !get) return false;
    const cors = {
      'access-control-allow-origin': FILE_RESPONSE_HEADERS['access-control-allow-origin'],
    };
    if (request.method === 'OPTIONS') {
      response.writeHead(204, {
        ...cors,
        'access-control-allow-methods': UPLOAD_CORS.allowedMethods.join(', '),
        'access-control-allow-headers': UPLOAD_CORS.allowedHeaders.join(', '),
        'access-control-max-age': String(UPLOAD_CORS.maxAgeSeconds),
      });
      response.end();
      return true;
    }
    try {
      if (put && request.method === 'PUT') await this.put(request, url, put);
      else if (get && (request.method === 'GET' || request.method === 'HEAD'))
        return await this.get(request, response, get);
      else throw new S3Refusal(405, 'MethodNotAllowed', 'The specified method is not allowed');
      response.writeHead(200, { ...cors, etag: '"local"', 'content-length': '0' });
      response.end();
    } catch (caught) {
      // Anything else (a full disk) is S3's 500, never the local system's end.
      const error =
        caught instanceof S3Refusal
          ? caught
          : new S3Refusal(500, 'InternalError', 'We encountered an internal error');
      if (response.headersSent) return Boolean(response.destroy());
      const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${error.code}</Code><Message>${error.message}</Message></Error>`;
      response.writeHead(error.status, {
        ...cors,
        'content-type': 'application/xml',
        'content-length': String(Buffer.byteLength(body)),
        connection: 'close',
      });
      response.end(body);
    }
    return true;
  }

  /** `/<bucket>/uploads/<key>/<name>`: the key and the decoded name. */
  private putTarget(pathname: string): { key: string; name: string } | undefined {
    const prefix = `/${this.options.bucket}/${UPLOAD_PREFIX}`;
    if (!pathname.startsWith(prefix)) return undefined;
    return this.parts(pathname.slice(prefix.length));
  }

  /** `/<key>/<name>`: CloudFront's path, the prefix being its origin path. */
  private getTarget(pathname: string): { key: string; name: string } | undefined {
    return this.parts(pathname.slice(1));
  }

  private parts(path: string): { key: string; name: string } | undefined {
    const [key, name, ...rest] = path.split('/');
    if (!key || !KEY.test(key) || !name || rest.length > 0) return undefined;
    try {
      return { key, name: decodeURIComponent(name) };
    } catch {
      return undefined;
    }
  }

  private async put(request: IncomingMessage, url: URL, target: { key: string; name: string }) {
    const signedHeaders = await this.verify(request, url);
    if (!signedHeaders.includes('content-length') || !signedHeaders.includes('content-type'))
      throw new S3Refusal(403, 'AccessDenied', 'A slot signs Content-Length and Content-Type');
    const size = Number(request.headers['content-length']);
    const contentType = request.headers['content-type'] ?? '';
    const folder = join(this.options.dir, target.key);
    const partial = join(folder, `data.${process.pid}.${this.now()}.partial`);
    await mkdir(folder, { recursive: true });
    const chunks: Buffer[] = [];
    let received = 0;
    for await (const chunk of request) {
      received += (chunk as Buffer).length;
      if (received > size)
        throw new S3Refusal(400, 'IncompleteBody', 'The body is longer than Content-Length');
      chunks.push(chunk as Buffer);
    }
    if (received !== size)
      throw new S3Refusal(
        400,
        'IncompleteBody',
        'You did not provide the number of bytes specified by the Content-Length',
      );
    await writeFile(partial, Buffer.concat(chunks));
    await rename(partial, join(folder, 'data'));
    const meta: Meta = { name: target.name, contentType, size, storedAt: this.now() };
    await writeFile(join(folder, 'meta.json'), JSON.stringify(meta));
  }

  /**
   * S3's checks of a presigned URL: its algorithm, its expiry, and its signature, recomputed by the
   * SDK's signer over what arrived (method, path, query, the signed headers' values). Returns the
   * signed header names.
   */
  private async verify(request: IncomingMessage, url: URL): Promise<string[]> {
    const query = Object.fromEntries(url.searchParams);
    const {
      'X-Amz-Algorithm': algorithm,
      'X-Amz-Credential': credential,
      'X-Amz-Date': date,
      'X-Amz-Expires': expires,
      'X-Amz-SignedHeaders': signed,
      'X-Amz-Signature': signature,
      'X-Amz-Security-Token': sessionToken,
      ...rest
    } = query;
    if (algorithm !== 'AWS4-HMAC-SHA256' || !credential || !date || !expires || !signed || !signature)
      throw new S3Refusal(403, 'AccessDenied', 'Only presigned URLs are accepted');
    const signedAt = Date.parse(
      date.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
    );
    if (!Number.isFinite(signedAt) || !/^\d+$/.test(expires))
      throw new S3Refusal(403, 'AccessDenied', 'Bad X-Amz-Date or X-Amz-Expires');
    if (this.now() > signedAt + Number(expires) * 1000)
      throw new S3Refusal(403, 'AccessDenied', 'Request has expired');
    const [accessKeyId, , region, service] = credential.split('/');
    const signedHeaders = signed.split(';');
    const headers: Record<string, string> = {};
    for (const name of signedHeaders) {
      const value = request.headers[name];
      if (value === undefined)
        throw new S3Refusal(403, 'SignatureDoesNotMatch', `Missing signed header ${name}`);
      headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    const { 'X-Amz-Content-Sha256': payloadHash, ...otherQuery } = rest;
    // The presigner hoisted this header into the query under this very name (case counts there).
    if (payloadHash) headers['X-Amz-Content-Sha256'] = payloadHash;
    const signer = new SignatureV4({
      service: service ?? 's3',
      region: region ?? LOCAL_REGION,
      credentials: {
        accessKeyId: accessKeyId ?? '',
        secretAccessKey: this.options.secretAccessKey ?? LOCAL_CREDENTIALS.secretAccessKey,
        ...(sessionToken ? { sessionToken } : {}),
      },
      sha256: Sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const expected = await signer.presign(
      {
        method: request.method ?? 'PUT',
        protocol: 'http:',
        hostname: headers.host ?? '',
        path: (request.url ?? '/').split('?')[0] as string,
        query: otherQuery,
        headers,
      },
      {
        signingDate: new Date(signedAt),
        expiresIn: Number(expires),
        signableHeaders: new Set(signedHeaders),
      },
    );
    if (expected.query?.['X-Amz-Signature'] !== signature)
      throw new S3Refusal(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided',
      );
    return signedHeaders;
  }

  private async meta(key: string): Promise<Meta | undefined> {
    if (!KEY.test(key)) return undefined;
    const text = await readFile(join(this.options.dir, key, 'meta.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as Meta);
  }

  private async get(
    request: IncomingMessage,
    response: ServerResponse,
    target: { key: string; name: string },
  ): Promise<boolean> {
    const meta = await this.meta(target.key);
    const path = join(this.options.dir, target.key, 'data');
    const found = meta?.name === target.name ? await stat(path).catch(() => undefined) : undefined;
    if (!meta || !found) throw new S3Refusal(404, 'NoSuchKey', 'The specified key does not exist.');
    response.writeHead(200, {
      ...FILE_RESPONSE_HEADERS,
      'content-type': meta.contentType,
      'content-length': String(found.size),
      'content-disposition': contentDisposition(meta.contentType, meta.name),
      'cache-control': 'private, max-age=86400',
      'last-modified': new Date(meta.storedAt).toUTCString(),
    });
    if (request.method === 'HEAD') response.end();
    else
      createReadStream(path)
        .on('error', () => response.destroy())
        .pipe(response);
    return true;
  }
}
