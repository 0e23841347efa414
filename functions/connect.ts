// $connect: records the connection and negotiates the `xmpp` subprotocol (RFC 7395 §3.1).
import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import type { Context } from '../lib/ports.ts';
import { onConnect } from '../lib/server.ts';
import { createContext, lazyContext, settingsFromEnv } from './runtime.ts';

export interface ConnectEvent {
  requestContext: { connectionId: string; routeKey: string; eventType: 'CONNECT' };
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
  return async (event: ConnectEvent): Promise<APIGatewayProxyResultV2> => {
    const response = await onConnect(context(), {
      connectionId: event.requestContext.connectionId,
      subprotocols: offeredSubprotocols(event.headers),
    });
    return {
      statusCode: response.statusCode,
      headers: response.subprotocol ? { 'Sec-WebSocket-Protocol': response.subprotocol } : undefined,
    };
  };
}

export const handler = createConnectHandler(lazyContext(() => createContext(settingsFromEnv())));
