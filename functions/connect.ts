// $connect: records the connection and negotiates the `xmpp` subprotocol (RFC 7395 §3.1).
import type { APIGatewayProxyResultV2, Context as LambdaContext } from 'aws-lambda';
import type { Context } from '../lib/ports.ts';
import { onConnect } from '../lib/server.ts';
import { createContext, endInvocation, lazyContext, settingsFromEnv, startInvocation } from './runtime.ts';

export interface ConnectEvent {
  requestContext: {
    connectionId: string;
    routeKey: string;
    eventType: 'CONNECT';
    /** The client's address (registration limits, lib/register.ts). */
    identity?: { sourceIp?: string };
  };
  headers?: Record<string, string | undefined>;
}

export function offeredSubprotocols(headers: ConnectEvent['headers']): string[] {
  const entry = Object.entries(headers ?? {}).find(
    ([name]) => name.toLowerCase() === 'sec-websocket-protocol',
  );
  return (entry?.[1] ?? '')
    .split(',')
    .map((value) => value.trim())
    .filter(Boolean);
}

export function createConnectHandler(context: () => Context) {
  return async (event: ConnectEvent, invocation?: LambdaContext): Promise<APIGatewayProxyResultV2> => {
    const ctx = context();
    startInvocation(ctx, invocation);
    try {
      const response = await onConnect(ctx, {
        connectionId: event.requestContext.connectionId,
        subprotocols: offeredSubprotocols(event.headers),
        sourceAddress: event.requestContext.identity?.sourceIp,
      });
      return {
        statusCode: response.statusCode,
        headers: response.subprotocol ? { 'Sec-WebSocket-Protocol': response.subprotocol } : undefined,
      };
    } finally {
      endInvocation(ctx);
    }
  };
}

export const handler = createConnectHandler(lazyContext(() => createContext(settingsFromEnv())));
