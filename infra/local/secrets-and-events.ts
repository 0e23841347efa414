// Secrets Manager GetSecretValue and EventBridge PutEvents for the local system, as the real
// clients speak them (AWS JSON 1.1: `POST /`, `x-amz-target: secretsmanager.GetSecretValue` or
// `AWSEvents.PutEvents`), served by the WebSocket API emulator's HTTP server beside SQS. The
// push function reads its signing secret and puts its events through them (lib/push.ts), the
// in-process handlers with the emulator's origin as endpoint, the bundles through
// AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL_EVENTBRIDGE.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface LocalEvent {
  readonly EventBusName?: string;
  readonly Source?: string;
  readonly DetailType?: string;
  readonly Detail?: string;
}

export class LocalSecretsAndEvents {
  private readonly secrets = new Map<string, string>();
  /** Every event put, in order. */
  readonly events: LocalEvent[] = [];
  private readonly listeners = new Set<(event: LocalEvent) => void>();

  /** A secret, found by its ARN or name as GetSecretValue's SecretId. */
  addSecret(id: string, value: string): void {
    this.secrets.set(id, value);
  }

  /** Calls `listener` with each event put from now on; returns the unsubscribe. */
  onEvent(listener: (event: LocalEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Answers one request; true when it was one of these services'. */
  async answer(request: IncomingMessage, response: ServerResponse): Promise<boolean> {
    const target = String(request.headers['x-amz-target'] ?? '');
    if (target !== 'secretsmanager.GetSecretValue' && target !== 'AWSEvents.PutEvents') return false;
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify(body));
    };
    if (target === 'secretsmanager.GetSecretValue') {
      const value = this.secrets.get(String(input.SecretId));
      if (value === undefined) {
        send(400, {
          __type: 'ResourceNotFoundException',
          message: "Secrets Manager can't find the specified secret.",
        });
      } else {
        send(200, {
          ARN: input.SecretId,
          Name: input.SecretId,
          SecretString: value,
          VersionId: randomUUID(),
        });
      }
      return true;
    }
    const entries = (input.Entries ?? []) as LocalEvent[];
    for (const entry of entries) {
      this.events.push(entry);
      for (const listener of this.listeners) listener(entry);
    }
    send(200, { FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: randomUUID() })) });
    return true;
  }
}
