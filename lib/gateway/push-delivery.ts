// The PushDelivery port (lib/push.ts): each notification is POSTed to its app server's HTTPS
// endpoint, signed with HMAC-SHA256 over the exact bytes of the body, keyed by the
// deployment's push secret (Secrets Manager on AWS). The app server recomputes the digest and
// compares it in constant time before it trusts a notification (README, "Push notifications").
// Optionally the same summary goes on an EventBridge bus (`pushEvents`).
import { createHmac } from 'node:crypto';
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { PushDelivery, PushPostResult } from '../ports.ts';

export const SIGNATURE_HEADER = 'x-xmpp-push-signature';
/** The EventBridge event's source and detail type. */
export const EVENT_SOURCE = 'serverless-xmpp.push';
export const EVENT_DETAIL_TYPE = 'XMPP push notification';
/** An app server that has not answered by then is tried again later. */
const POST_TIMEOUT_MS = 5000;

/** The header's value: `sha256=` and the hex HMAC-SHA256 of the body. */
export function pushSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

export interface PushDeliveryOptions {
  /** The signing secret (read once per container from Secrets Manager on AWS). */
  readonly secret: () => Promise<string>;
  /** With `pushEvents`: the bus the notifications also go to. */
  readonly events?: { readonly client: EventBridgeClient; readonly busName: string };
  readonly timeoutMs?: number;
}

export class HttpPushDelivery implements PushDelivery {
  readonly event?: (detail: Record<string, unknown>) => Promise<void>;

  constructor(private readonly options: PushDeliveryOptions) {
    const events = options.events;
    if (events) this.event = (detail) => putEvent(events.client, events.busName, detail);
  }

  async post(url: string, body: string): Promise<PushPostResult> {
    const signature = pushSignature(await this.options.secret(), body);
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/xml; charset=utf-8', [SIGNATURE_HEADER]: signature },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs ?? POST_TIMEOUT_MS),
      });
      // The answer's body is not needed; reading it frees the connection.
      await response.arrayBuffer().catch(() => undefined);
      return { status: response.status };
    } catch {
      return 'failed';
    }
  }
}

async function putEvent(client: EventBridgeClient, busName: string, detail: Record<string, unknown>) {
  const { FailedEntryCount = 0, Entries = [] } = await client.send(
    new PutEventsCommand({
      Entries: [
        {
          EventBusName: busName,
          Source: EVENT_SOURCE,
          DetailType: EVENT_DETAIL_TYPE,
          Detail: JSON.stringify(detail),
        },
      ],
    }),
  );
  if (FailedEntryCount > 0) throw new Error(`push event refused: ${Entries[0]?.ErrorCode ?? 'unknown'}`);
}

/** Reads a secret's value once and keeps it (a container's lifetime). */
export function cachedSecret(read: () => Promise<string>): () => Promise<string> {
  let value: Promise<string> | undefined;
  return () => {
    value ??= read().catch((error) => {
      value = undefined;
      throw error;
    });
    return value;
  };
}
