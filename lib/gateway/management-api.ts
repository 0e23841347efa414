// The Gateway port over the API Gateway Management API (PostToConnection, DeleteConnection).
import {
  type ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { Gateway, Logger, PostResult } from '../ports.ts';

const isGone = (error: unknown) => (error as Error)?.name === 'GoneException';

export class ManagementApiGateway implements Gateway {
  constructor(
    private readonly client: ApiGatewayManagementApiClient,
    private readonly logger?: Logger,
  ) {}

  async post(connectionId: string, frame: string): Promise<PostResult> {
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: frame }));
      return 'ok';
    } catch (error) {
      if (isGone(error)) {
        this.logger?.info('connection gone', { connectionId });
        return 'gone';
      }
      throw error;
    }
  }

  async close(connectionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (error) {
      if (!isGone(error)) throw error;
    }
  }
}
