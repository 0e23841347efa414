// The Uploads port (lib/ports.ts) on S3: XEP-0363 PUT URLs presigned with the function's own
// credentials (no request to S3: a signature is computed), for exactly one object under
// UPLOAD_PREFIX, its Content-Length and Content-Type signed; and the GET URLs under which the
// files are read (CloudFront on AWS, infra/uploads.ts; the local system's port locally).
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Uploads } from '../ports.ts';
import { fileUrl, UPLOAD_PREFIX } from '../upload-files.ts';

/** Signed although the presigner would leave them out: S3 then refuses another size or type. */
const SIGNED_HEADERS = new Set(['content-length', 'content-type']);

export class S3Uploads implements Uploads {
  /** `baseUrl`: where files are read, e.g. `https://d111111abcdef8.cloudfront.net` (no slash at the end). */
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly baseUrl: string,
  ) {}

  presignPut(
    path: string,
    file: { readonly size: number; readonly contentType: string; readonly expiresInSeconds: number },
  ): Promise<string> {
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: `${UPLOAD_PREFIX}${path}`,
      ContentLength: file.size,
      ContentType: file.contentType,
    });
    return getSignedUrl(this.s3, command, {
      expiresIn: file.expiresInSeconds,
      signableHeaders: SIGNED_HEADERS,
    });
  }

  getUrl(path: string): string {
    return fileUrl(this.baseUrl, path);
  }
}
