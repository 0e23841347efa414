// XEP-0363: HTTP File Upload. The upload service (`upload.<domain>`, listed in the domain's
// disco#items) gives an authenticated user a slot: a PUT URL presigned for exactly the file's
// size and type, valid PUT_EXPIRY_SECONDS, and the GET URL the file is read at while it is kept
// (uploadRetentionDays). The bytes never pass through XMPP or a function: S3 (or locally
// infra/local/uploads.ts) takes the PUT. Each slot counts its size against the user's day
// (store/uploads.ts): one conditional UpdateItem, the only request a slot makes.
import { StanzaError } from './errors.ts';
import { NS } from './ns.ts';
import type { IqHandlers, StanzaRequest } from './router.ts';
import { badFilename, isMediaType, newFilePath, PUT_EXPIRY_SECONDS } from './upload-files.ts';
import { type Element, xml } from './xml.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_TYPE = 'application/octet-stream';

/** The service itself: `upload.<domain>`, no local part or resource. */
function service(request: StanzaRequest): void {
  const { target } = request;
  if (target.kind !== 'user' || target.jid.local || target.jid.resource)
    throw new StanzaError('service-unavailable');
}

/** XEP-0363 §3 with XEP-0128: the feature, and max-file-size in a form. */
function discoInfo(maxFileBytes: number): Element {
  return xml(
    'query',
    { xmlns: NS.discoInfo },
    xml('identity', { category: 'store', type: 'file', name: 'HTTP File Upload' }),
    xml('feature', { var: NS.httpUpload }),
    xml('feature', { var: NS.discoInfo }),
    xml(
      'x',
      { xmlns: NS.dataForms, type: 'result' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS.httpUpload)),
      xml('field', { var: 'max-file-size' }, xml('value', {}, String(maxFileBytes))),
    ),
  );
}

/** XEP-0363 §6: too large, with the limit. */
const tooLarge = (max: number) =>
  new StanzaError(
    'not-acceptable',
    `File too large. The maximum file size is ${max} bytes`,
    'modify',
    xml('file-too-large', { xmlns: NS.httpUpload }, xml('max-file-size', {}, String(max))),
  );

/** XEP-0363 §6: the day's quota is used up; try again at the next UTC midnight. */
const overQuota = (quota: number, now: number) =>
  new StanzaError(
    'resource-constraint',
    `Quota reached: ${quota} bytes of uploads a day`,
    'wait',
    xml('retry', {
      xmlns: NS.httpUpload,
      stamp: new Date((Math.floor(now / DAY_MS) + 1) * DAY_MS).toISOString().replace('.000Z', 'Z'),
    }),
  );

/** XEP-0363 §4: filename and size required, content-type optional. */
function parseRequest(request: Element): { filename: string; size: number; contentType: string } {
  const { filename, size, 'content-type': type } = request.attrs as Record<string, string | undefined>;
  const reason = badFilename(filename);
  if (reason) throw new StanzaError('bad-request', reason);
  if (size === undefined || !/^\d{1,15}$/.test(size))
    throw new StanzaError('bad-request', 'size must be the file size in bytes');
  if (type !== undefined && type !== '' && !isMediaType(type))
    throw new StanzaError('bad-request', 'content-type must be a media type');
  return { filename: filename as string, size: Number(size), contentType: type || DEFAULT_TYPE };
}

async function requestSlot(request: StanzaRequest): Promise<Element> {
  service(request);
  const { ctx, record } = request.link;
  const user = record.user;
  if (!ctx.uploads || !user) throw new StanzaError('service-unavailable');
  const file = parseRequest(request.payload);
  const { uploadMaxFileBytes: max, uploadQuotaBytesPerDay: quota } = ctx.config;
  if (file.size > max) throw tooLarge(max);
  const now = ctx.now();
  if (!(await ctx.store.countUpload(user, file.size, quota, now))) throw overQuota(quota, now);
  const path = newFilePath(file.filename);
  const put = await ctx.uploads.presignPut(path, {
    size: file.size,
    contentType: file.contentType,
    expiresInSeconds: PUT_EXPIRY_SECONDS,
  });
  ctx.logger.info('upload slot', { user, size: file.size });
  return xml(
    'slot',
    { xmlns: NS.httpUpload },
    // No <header/>: the signature is in the URL; the client sends Content-Length and Content-Type.
    xml('put', { url: put }),
    xml('get', { url: ctx.uploads.getUrl(path) }),
  );
}

/** Keyed `upload …`: iqs to the upload service (lib/router.ts). */
export const uploadHandlers: IqHandlers = {
  [`upload get query ${NS.discoInfo}`]: async (request) => {
    service(request);
    if (request.payload.attrs.node) throw new StanzaError('item-not-found');
    return discoInfo(request.link.ctx.config.uploadMaxFileBytes);
  },
  [`upload get query ${NS.discoItems}`]: async (request) => {
    service(request);
    return xml('query', { xmlns: NS.discoItems });
  },
  [`upload get request ${NS.httpUpload}`]: requestSlot,
};
