// XEP-0357: Push Notifications (urn:xmpp:push:0), delivered without server-to-server XMPP.
//
// A client enables a push service (its `jid`, one the deployment maps to an app server's HTTPS
// endpoint: Config.pushServices) and a node; the registration is kept in the user's partition
// (store/push.ts), so the account read routing already makes brings it along. When a message
// with a body is stored for a user no session took it for (none available, or every push met
// a gone connection), the frames function queues one job per registration (PushJobs: a
// standard SQS queue) and goes on: the message path never waits on an app server.
//
// The push function (functions/push.ts) takes the jobs. Coalescing: at most one notification
// per registration every `pushCoalesceSeconds`; a message that comes in between is added to
// the registration's pending state, and one notification, when it is due, covers them all.
// The notification is the §7 publish a server would send the push service over XMPP: an
// `<iq type='set'>` from the user's bare JID to the service, whose `<pubsub>` publishes a
// `<notification>` with the urn:xmpp:push:summary form to the node, with the publish-options
// the client gave. It is POSTed to the service's endpoint, signed (HMAC-SHA256 over the body,
// lib/gateway/push-delivery.ts). An answer of 404 or 410 disables the registration (§7.1:
// the app server says it is gone); a failure or any other status is tried again later, the
// wait doubling from `pushRetrySeconds`, and after `pushMaxAttempts` tries the job goes to
// the dead-letter queue (alarmed).
//
// `message-count` is the number of messages waiting for the user: the offline counter the
// message path keeps anyway (store/messages.ts reserveOfflineSlot), reset when a session
// drains the inbox. `last-message-body` is sent only where the deployment allows it
// (`pushIncludeBody`, off by default: the body would pass through the app server and the
// platform's push service).
import { StanzaError } from './errors.ts';
import { stanzaId } from './ids.ts';
import { bare, parseJid } from './jid.ts';
import { NS } from './ns.ts';
import type { Account, Context, PushJob, PushPending, PushRegistration } from './ports.ts';
import type { IqHandlers } from './router.ts';
import { type Element, parseStored, xml } from './xml.ts';

export const PUSH_NS = 'urn:xmpp:push:0';
const SUMMARY_FORM = 'urn:xmpp:push:summary';
const PUBLISH_OPTIONS_FORM = 'http://jabber.org/protocol/pubsub#publish-options';
const PUBSUB_NS = 'http://jabber.org/protocol/pubsub';

/** A node and the publish-options are kept in the user's partition, which routing reads whole. */
export const MAX_NODE_LENGTH = 256;
export const MAX_OPTIONS_BYTES = 2048;
/** SQS delays a message by at most 15 minutes. */
const MAX_DELAY_SECONDS = 900;
/** A notification scheduled this long ago and not sent yet is scheduled again by the next message. */
const STALE_SCHEDULE_MS = 60_000;

/** §4.1: whether the account advertises urn:xmpp:push:0 (some push service is configured). */
export const pushEnabled = (ctx: Context) => ctx.config.pushServices.size > 0;

function serviceOf(payload: Element): string {
  const jid = payload.attrs.jid;
  if (!jid) throw new StanzaError('bad-request', 'a jid is required');
  const parsed = parseJid(jid);
  if (!parsed || parsed.resource) throw new StanzaError('jid-malformed');
  return bare(parsed);
}

function publishOptions(enable: Element): string | undefined {
  const forms = enable.getChildren('x', NS.dataForms);
  if (forms.length === 0) return undefined;
  const form = forms[0] as Element;
  const formType = form
    .getChildren('field')
    .find((field) => field.attrs.var === 'FORM_TYPE')
    ?.getChildText('value');
  if (forms.length > 1 || formType !== PUBLISH_OPTIONS_FORM)
    throw new StanzaError('bad-request', `the form must be ${PUBLISH_OPTIONS_FORM}`);
  // Sent back as submitted: the form's type is `submit` whatever the client wrote.
  const options = xml('x', { xmlns: NS.dataForms, type: 'submit' }, ...form.getChildElements()).toString();
  if (Buffer.byteLength(options) > MAX_OPTIONS_BYTES)
    throw new StanzaError('not-acceptable', `publish-options over ${MAX_OPTIONS_BYTES} bytes`);
  return options;
}

export const pushHandlers: IqHandlers = {
  // §5: sent to the user's own bare JID (or with no `to`, which means the same).
  [`set enable ${PUSH_NS}`]: async ({ link, payload }) => {
    const { ctx } = link;
    const user = link.record.user as string;
    const service = serviceOf(payload);
    // Only app servers the deployment knows: there is no XMPP federation to reach others.
    if (!ctx.config.pushServices.has(service))
      throw new StanzaError('item-not-found', `${service} is not a push service of this server`);
    const node = payload.attrs.node ?? '';
    if (node === '') throw new StanzaError('bad-request', 'a node is required');
    if (node.length > MAX_NODE_LENGTH) throw new StanzaError('not-acceptable', 'node too long');
    const options = publishOptions(payload);
    const registration: PushRegistration = { service, node, ...(options ? { options } : {}) };
    const account = await ctx.store.getAccount(user);
    const known = account.push.some((entry) => entry.service === service && entry.node === node);
    if (!known && account.push.length >= ctx.config.pushMaxRegistrations) {
      throw new StanzaError(
        'resource-constraint',
        `at most ${ctx.config.pushMaxRegistrations} push registrations per account`,
      );
    }
    await ctx.store.enablePush(user, registration);
    ctx.logger.info('push enabled', { user, pushService: service });
    return undefined;
  },
  // §6: one node of the service, or every node of it.
  [`set disable ${PUSH_NS}`]: async ({ link, payload }) => {
    const { ctx } = link;
    const user = link.record.user as string;
    const service = serviceOf(payload);
    const node = payload.attrs.node;
    const account = await ctx.store.getAccount(user);
    const removed = account.push.filter(
      (entry) => entry.service === service && (node === undefined || entry.node === node),
    );
    if (removed.length > 0) await ctx.store.disablePush(user, removed);
    return undefined;
  },
};

/** What one message left waiting tells the registrations. */
export interface PushNote {
  /** Messages waiting for the user, this one included. */
  readonly count: number;
  /** The sender's full JID (a room's occupant JID for a mention). */
  readonly sender: string;
  readonly body?: string;
}

/**
 * Queues one job per registration of the user (read with `account`): one request to the
 * queue, whatever the number of registrations, and none when there are none.
 */
export async function tellPush(
  ctx: Context,
  user: string,
  account: Pick<Account, 'push'>,
  note: PushNote,
): Promise<void> {
  if (!ctx.pushJobs || account.push.length === 0) return;
  const body = ctx.config.pushIncludeBody ? note.body : undefined;
  await ctx.pushJobs.send(
    account.push.map((registration) => ({
      kind: 'message',
      user,
      registration,
      count: note.count,
      sender: note.sender,
      ...(body === undefined ? {} : { body }),
    })),
  );
}

/** The push function's work on one job (functions/push.ts). Throws only on a fault worth a retry. */
export async function handlePushJob(ctx: Context, job: PushJob): Promise<void> {
  if (job.kind === 'message') return addMessage(ctx, job);
  return notify(ctx, job);
}

async function addMessage(ctx: Context, job: Extract<PushJob, { kind: 'message' }>): Promise<void> {
  const before = await ctx.store.addPushPending(job.user, job.registration, job);
  if (!before) return; // disabled meanwhile
  const now = ctx.now();
  // The same write set `scheduledFor` unless it was set: then another message of this wait
  // owns the notification (being sent, or queued for later), unless that owner was lost (a
  // crash between its two requests, or a dead letter) and its mark has gone stale.
  if (before.scheduledFor !== undefined && before.scheduledFor + STALE_SCHEDULE_MS > now) return;
  const due = (before.notifiedAt ?? 0) + ctx.config.pushCoalesceSeconds * 1000;
  if (due <= now)
    return notify(ctx, { kind: 'notify', user: job.user, registration: job.registration, attempt: 0 });
  await schedule(ctx, { kind: 'notify', user: job.user, registration: job.registration, attempt: 0 }, due);
}

async function schedule(ctx: Context, job: Extract<PushJob, { kind: 'notify' }>, due: number): Promise<void> {
  const delay = Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil((due - ctx.now()) / 1000)));
  await ctx.store.schedulePush(job.user, job.registration, ctx.now() + delay * 1000);
  await jobs(ctx).send([job], delay);
}

function jobs(ctx: Context) {
  if (!ctx.pushJobs) throw new Error('push jobs need a queue (PUSH_QUEUE_URL)');
  return ctx.pushJobs;
}

async function notify(ctx: Context, job: Extract<PushJob, { kind: 'notify' }>): Promise<void> {
  const { user, registration } = job;
  const pending = await ctx.store.getPushPending(user, registration);
  if (!pending || pending.pending <= 0) return;
  const now = ctx.now();
  const due = (pending.notifiedAt ?? 0) + ctx.config.pushCoalesceSeconds * 1000;
  // A second job for the same wait (a duplicate, or one scheduled by a message that came
  // while the first was sent): the one notification per period stands.
  if (due > now) return schedule(ctx, job, due);
  const url = ctx.config.pushServices.get(registration.service);
  if (!url) {
    // The deployment no longer has this service: nothing can be sent to it, ever.
    ctx.logger.warn('push service no longer configured: registration removed', {
      user,
      pushService: registration.service,
    });
    return ctx.store.disablePush(user, [registration]);
  }
  const delivery = ctx.pushDelivery;
  if (!delivery) throw new Error('push delivery is not configured');
  if (job.attempt === 0 && delivery.event) await delivery.event(eventDetail(ctx, user, pending));
  const result = await delivery.post(url, publishStanza(ctx, user, pending));
  const status = result === 'failed' ? undefined : result.status;
  if (status !== undefined && status >= 200 && status < 300) {
    ctx.metrics?.count('PushNotificationsSent');
    const left = await ctx.store.notePushSent(user, registration, pending.pending, now);
    if (left > 0) await schedule(ctx, { ...job, attempt: 0 }, now + ctx.config.pushCoalesceSeconds * 1000);
    return;
  }
  if (status === 404 || status === 410) {
    ctx.logger.info('push registration disabled by its app server', {
      user,
      pushService: registration.service,
      status,
    });
    return ctx.store.disablePush(user, [registration]);
  }
  const attempt = job.attempt + 1;
  ctx.logger.warn('push notification failed', { user, pushService: registration.service, status, attempt });
  if (attempt >= ctx.config.pushMaxAttempts) {
    ctx.metrics?.count('PushNotificationsFailed');
    return jobs(ctx).deadLetter({ ...job, attempt }, status === undefined ? 'no answer' : `status ${status}`);
  }
  await schedule(ctx, { ...job, attempt }, now + ctx.config.pushRetrySeconds * 1000 * 2 ** (attempt - 1));
}

/** §7: the publish, as the service would get it over XMPP. */
export function publishStanza(ctx: Context, user: string, pending: PushPending): string {
  const field = (name: string, value: string) => xml('field', { var: name }, xml('value', {}, value));
  const summary = xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    field('FORM_TYPE', SUMMARY_FORM),
    field('message-count', String(pending.count)),
    pending.sender !== undefined && field('last-message-sender', pending.sender),
    ctx.config.pushIncludeBody && pending.body !== undefined && field('last-message-body', pending.body),
  );
  const options = pending.options ? xml('publish-options', {}, parseStored(pending.options)) : undefined;
  return xml(
    'iq',
    { xmlns: NS.client, type: 'set', from: user, to: pending.service, id: stanzaId() },
    xml(
      'pubsub',
      { xmlns: PUBSUB_NS },
      xml(
        'publish',
        { node: pending.node },
        xml('item', {}, xml('notification', { xmlns: PUSH_NS }, summary)),
      ),
      options,
    ),
  ).toString();
}

/** The EventBridge event's detail (`pushEvents`): the same summary, as JSON. */
function eventDetail(ctx: Context, user: string, pending: PushPending): Record<string, unknown> {
  return {
    user,
    service: pending.service,
    node: pending.node,
    messageCount: pending.count,
    ...(pending.sender === undefined ? {} : { lastMessageSender: pending.sender }),
    ...(ctx.config.pushIncludeBody && pending.body !== undefined ? { lastMessageBody: pending.body } : {}),
    ...(pending.options ? { publishOptions: formFields(parseStored(pending.options)) } : {}),
  };
}

function formFields(form: Element): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const field of form.getChildren('field')) {
    const name = field.attrs.var;
    if (name && name !== 'FORM_TYPE') fields[name] = field.getChildText('value') ?? '';
  }
  return fields;
}
