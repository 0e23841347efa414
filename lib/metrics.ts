// The service's own metrics: names (the MetricName union of ports.ts), where they are published
// and what each counts. functions/runtime.ts publishes them as CloudWatch embedded metric format
// (EMF) log lines; the stack's dashboard (infra/observability.ts) graphs them from here.
import type { MetricName } from './ports.ts';

/** The CloudWatch namespace of every metric below; each also has a `service` dimension (the stack). */
export const METRIC_NAMESPACE = 'ServerlessXmpp';

/** What each counter counts, in the order the dashboard shows them. */
export const METRIC_DESCRIPTIONS = {
  StanzasHandled: 'Frames and stanzas handled',
  MessagesStored: 'Messages stored (server receipt sent)',
  MessagesDelivered: 'Messages marked delivered',
  MessagesDrained: 'Stored messages pushed to a new session',
  ReceiptsRouted: 'XEP-0184 receipts routed to the sender',
  GoneConnections: 'Posts that met a gone connection (410)',
  SaslFailures: 'SASL authentication failures',
  PushNotificationsSent: 'XEP-0357 notifications an app server took',
  PushNotificationsFailed: 'XEP-0357 notifications given up on (dead-letter queue)',
} as const satisfies Record<MetricName, string>;

export const METRIC_NAMES = Object.keys(METRIC_DESCRIPTIONS) as MetricName[];
