// XEP-0363 slots' presigning (lib/upload.ts) for the frames function, the only one that gives
// slots: its context gets `uploads` here, so the S3 client and the presigner are bundled into
// the frames function alone, not into every function that shares functions/runtime.ts.
import type { Context, Uploads } from '../lib/ports.ts';
import { fileUrl } from '../lib/upload-files.ts';
import { localCredentials, missing, onFirstCall, type RuntimeSettings } from './runtime.ts';

/**
 * Adds `uploads` to the context when the settings name a bucket (UPLOAD_BUCKET). The same
 * object, not a copy: the adapters createContext built read the invocation's time left from it.
 */
export function withUploads(settings: RuntimeSettings, context: Context): Context {
  if (!settings.uploadBucket) return context;
  return Object.assign(context, { uploads: s3Uploads(settings, settings.uploadBucket) });
}

/**
 * Presigning makes no request; the client only signs. Checksums only when an operation requires
 * one: otherwise the presigned PUT would carry the checksum of an empty body. The S3 client and
 * the presigner are imported on the first slot; GET URLs need neither.
 */
function s3Uploads(settings: RuntimeSettings, bucket: string): Uploads {
  const baseUrl = () => settings.uploadBaseUrl ?? missing('UPLOAD_BASE_URL');
  const presigner = onFirstCall<Pick<Uploads, 'presignPut'>>(async () => {
    const [{ S3Client }, { S3Uploads }] = await Promise.all([
      import('@aws-sdk/client-s3'),
      import('../lib/gateway/s3-uploads.ts'),
    ]);
    const s3 = new S3Client({
      region: settings.region,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      ...(settings.s3Endpoint
        ? { endpoint: settings.s3Endpoint, forcePathStyle: true, credentials: localCredentials }
        : {}),
    });
    return new S3Uploads(s3, bucket, baseUrl());
  });
  return {
    presignPut: (path, file) => presigner.presignPut(path, file),
    getUrl: (path) => fileUrl(baseUrl(), path),
  };
}
