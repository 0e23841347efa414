// The one table's definition, shared by the CDK stack (infra/) and the local system
// (infra/local/) so that both always create the same thing. Key design: store/dynamo.ts.

export const TABLE_SCHEMA = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds; DynamoDB deletes expired items lazily, so reads filter on it too. */
  timeToLiveAttribute: 'expiresAt',
  /**
   * Undelivered messages in storage order, per recipient. A local index because only
   * those allow strongly consistent reads (a drain must see a message stored a moment
   * before) and it must exist when the table is created.
   */
  orderIndex: { name: 'byOrder', sortKey: 'seq' },
  /**
   * The table's stream carries the items TTL deletes, so that a session whose $disconnect
   * never came still ends (lib/server.ts onExpired). Old images only: what was deleted.
   * The sort keys of the items that matter (store/dynamo.ts): the stack filters the
   * stream on them, so that no other write invokes anything.
   */
  expiryStream: { viewType: 'OLD_IMAGE', sortKeys: { equal: ['#CONN'], prefix: ['#OCC#'] } },
} as const;

/** How a TTL deletion shows in a DynamoDB stream record (an explicit delete has no userIdentity). */
export const TTL_DELETION = {
  eventName: 'REMOVE',
  userIdentity: { type: 'Service', principalId: 'dynamodb.amazonaws.com' },
} as const;

/** CreateTable input for DynamoDB Local (on AWS the stack creates the table). */
export function createTableInput(tableName: string) {
  const { partitionKey, sortKey, orderIndex } = TABLE_SCHEMA;
  // No stream: infra/local/ttl.ts stands in for TTL and the stream together.
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: [
      { AttributeName: partitionKey, AttributeType: 'S' as const },
      { AttributeName: sortKey, AttributeType: 'S' as const },
      { AttributeName: orderIndex.sortKey, AttributeType: 'S' as const },
    ],
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' as const },
      { AttributeName: sortKey, KeyType: 'RANGE' as const },
    ],
    LocalSecondaryIndexes: [
      {
        IndexName: orderIndex.name,
        KeySchema: [
          { AttributeName: partitionKey, KeyType: 'HASH' as const },
          { AttributeName: orderIndex.sortKey, KeyType: 'RANGE' as const },
        ],
        Projection: { ProjectionType: 'ALL' as const },
      },
    ],
  };
}
