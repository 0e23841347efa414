// Accounts in the table, for the command-line tools (`npm run users`, `npm run smoke`): which
// table (a deployed stack's, or the running local system's), and one way to create a user.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../infra/local/dynamodb.ts';
import type { Store } from '../lib/ports.ts';
import { makeCredentials } from '../lib/scram.ts';

/** A mistake in what the command was asked to do: the command prints it with its usage. */
export class UsageError extends Error {}

export interface TableOptions {
  /** The deployed stack's table (output TableName); absent: the running local system's. */
  readonly table?: string;
  readonly region?: string;
  /** A DynamoDB endpoint (DynamoDB Local). */
  readonly endpoint?: string;
  /** Where the local system keeps local.json. */
  readonly dataDir: string;
}

export interface TableTarget {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** The local system's XMPP domain, when the table is the running local system's. */
  readonly domain?: string;
}

/** What `npm start` writes to <data dir>/local.json while it runs. */
interface LocalSystemFile {
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  readonly domain?: string;
}

export function openTable(options: TableOptions): TableTarget {
  if (options.table) {
    const region = options.region ?? process.env.AWS_REGION;
    if (!region && !options.endpoint) throw new UsageError('--region is needed with --table');
    return {
      client: new DynamoDBClient({
        region: region ?? LOCAL_REGION,
        ...(options.endpoint ? { endpoint: options.endpoint, credentials: LOCAL_CREDENTIALS } : {}),
      }),
      tableName: options.table,
    };
  }
  const runtimeFile = resolve(options.dataDir, 'local.json');
  if (!existsSync(runtimeFile))
    throw new UsageError('No local system is running (start it with `npm start`), and no --table was given.');
  const local = JSON.parse(readFileSync(runtimeFile, 'utf8')) as LocalSystemFile;
  return {
    client: new DynamoDBClient({
      endpoint: options.endpoint ?? local.dynamoEndpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    }),
    tableName: local.tableName,
    domain: local.domain,
  };
}

/**
 * Creates the user, or sets the password of an existing one (keeping when it was created).
 * Only SCRAM keys are stored, never the password.
 */
export async function setPassword(
  store: Pick<Store, 'getUser' | 'putUser'>,
  user: string,
  password: string,
  iterations: number,
): Promise<'added' | 'updated'> {
  const existing = await store.getUser(user);
  await store.putUser({
    user,
    scram: makeCredentials(password, iterations),
    createdAt: existing?.createdAt ?? Date.now(),
  });
  return existing ? 'updated' : 'added';
}

/**
 * `npm run users -- delete`: what an account removal (lib/register.ts) deletes, from the table
 * alone: the credentials first, the account's entries in its contacts' rosters, then its roster,
 * sessions, presence, blocklist and undelivered messages. This command posts nothing: contacts
 * see the change at their next roster fetch, and an open session of the account lasts until it
 * disconnects (removal from a client ends them at once). False when there was no such user.
 */
export async function deleteAccount(
  store: Pick<Store, 'deleteUser' | 'getRoster' | 'getRosterItem' | 'removeRosterItem' | 'purgeAccount'>,
  user: string,
): Promise<boolean> {
  if (!(await store.deleteUser(user))) return false;
  for (const { contact } of (await store.getRoster(user)).items) {
    const entry = await store.getRosterItem(contact, user);
    if (entry) await store.removeRosterItem(contact, user, { listed: entry.listed });
  }
  await store.purgeAccount(user);
  return true;
}
