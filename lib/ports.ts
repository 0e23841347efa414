// The two ports the XMPP core talks through. Adapters: store/ (DynamoDB, composed in store/dynamo.ts) and
// gateway/management-api.ts (API Gateway Management API). Domain code never imports the SDK.
import type { Config } from './config.ts';
import type { ScramCredentials, ScramExchange } from './scram.ts';
import type { SubscriptionState } from './subscription.ts';

/** Where a connection is in RFC 6120 stream negotiation. */
export type StreamState =
  | 'connected' // WebSocket open, no <open/> yet
  | 'opened' // stream open, SASL offered
  | 'authenticating' // SCRAM exchange in progress
  | 'authenticated' // SASL done, waiting for the stream restart
  | 'restarted' // stream restarted, bind offered
  | 'bound'; // resource bound: stanzas flow

export interface ConnectionRecord {
  readonly connectionId: string;
  state: StreamState;
  streamId?: string;
  /** Bare JID, set once SASL succeeds. */
  user?: string;
  /** Bound resource, set once bind succeeds. */
  resource?: string;
  /** The SCRAM mechanism chosen when <auth/> came without an initial response. */
  saslMechanism?: string;
  sasl?: ScramExchange;
  saslFailures?: number;
  connectedAt: number;
  /** Epoch seconds: API Gateway never keeps a connection longer than 2 h. */
  expiresAt: number;
  /** Epoch ms: the stream is ending (session.ts); late posts from others skip it. */
  closingAt?: number;
  /** The client's IP address as API Gateway saw it at $connect (registration limits). */
  sourceAddress?: string;
  /** XEP-0352 <inactive/> sent between the restart and bind: the bound session starts inactive. */
  inactive?: boolean;
}

export interface SessionRecord {
  readonly user: string;
  readonly resource: string;
  readonly connectionId: string;
  /** RFC 6121 §4.2: available once the client sent initial presence. */
  available: boolean;
  priority: number;
  /** RFC 6121 §2.1.6: the session asked for the roster, so it gets roster pushes. */
  interested?: boolean;
  /** XEP-0191 §3.3: the session asked for the blocklist, so it gets blocklist pushes. */
  blocklistInterested?: boolean;
  /** XEP-0280: the session gets copies of its user's messages to and from other sessions. */
  carbons?: boolean;
  /** XEP-0352: the client said its user is not looking; presence updates and chat states wait (csi.ts). */
  inactive?: boolean;
  /**
   * Epoch ms: until then the offline drain is under way and messages wait behind it
   * (offline.ts). A lease, so that a drain that died does not hold messages back for long.
   */
  drainingUntil?: number;
  expiresAt: number;
}

/** One contact in a user's roster (RFC 6121 §2.1.2). */
export interface RosterItem extends SubscriptionState {
  readonly contact: string;
  readonly name?: string;
  readonly groups: readonly string[];
  /** False while the item only holds a subscription request the user has not answered. */
  readonly listed: boolean;
}

export interface Roster {
  readonly items: RosterItem[];
  /** XEP-0237 style roster version: grows with every change. */
  readonly version: number;
}

/** An available resource's last presence, where contacts' servers would find it. */
export interface PresenceEntry {
  readonly resource: string;
  readonly connectionId: string;
  readonly priority: number;
  /** The last available presence, `from` stamped, without `to`. */
  readonly stanza: string;
  readonly expiresAt: number;
  /** Directed presence sent outside the roster: they get unavailable when the session ends. */
  readonly directed: readonly string[];
  /** XEP-0352: the session is inactive, so broadcasts skip it (csi.ts); the session item's flag, copied. */
  readonly inactive?: boolean;
}

export interface UserRecord {
  readonly user: string;
  readonly scram: ScramCredentials;
  readonly createdAt: number;
}

/**
 * Where the sender of a message that asks for a receipt was when it was stored: the receipt
 * can go straight back there (lib/message.ts), without reading the sender's account.
 */
export interface SenderRoute {
  readonly connectionId: string;
  readonly resource: string;
  /** No other available session of the sender had carbons on: nobody else wants a copy. */
  readonly alone: boolean;
  /** Epoch ms the sender's sessions were read (the close fence's `routedAt`). */
  readonly at: number;
}

/** A message kept until the recipient acknowledges it (or, without a receipt request, gets it). */
export interface StoredMessage {
  /** Bare JIDs. */
  readonly recipient: string;
  readonly sender: string;
  /** The sender's stanza id: (sender, id) recognises a retry. */
  readonly id: string;
  /**
   * The server's id: time-ordered, the XEP-0359 stanza id the recipient gets, the one the
   * sender's server receipt carries and the XEP-0313 archive id on both sides.
   */
  readonly seq: string;
  /** The stanza as it will be pushed (from stamped, without our stanza-id). */
  readonly stanza: string;
  readonly storedAt: number;
  readonly receiptRequested: boolean;
  /** Epoch seconds: the end of the retention time. */
  readonly expiresAt: number;
  readonly route?: SenderRoute;
}

export interface InboxPage {
  readonly messages: StoredMessage[];
  /** The seq to continue after, when there may be more. */
  readonly next?: string;
}

/** XEP-0313 §6 (XEP-0441) preferences: which messages go into the user's archive. */
export interface ArchivePrefs {
  readonly default: 'always' | 'never' | 'roster';
  /** Bare JIDs always archived, whatever the default. */
  readonly always: readonly string[];
  /** Bare JIDs never archived (wins over `always`). */
  readonly never: readonly string[];
}

/** One message in an archive: a user's (XEP-0313) or a room's (room messages themselves). */
export interface ArchivedMessage {
  /** The archive id: the message's XEP-0359 stanza id. */
  readonly id: string;
  /** The other side: a bare JID in a user's archive, the sender's occupant JID in a room's. */
  readonly with: string;
  /** The other side's resource, when it had one (a user's archive: `with` queries by full JID). */
  readonly withResource?: string;
  /** The message as it was sent (from and to stamped). */
  readonly stanza: string;
  /** Epoch ms. */
  readonly at: number;
}

/** Where an archive lives: a user's own, or a room's messages. */
export type ArchiveOwner = { readonly user: string } | { readonly room: string };

export interface ArchiveRange {
  /** Only ids >= this (a sequenceFloor or an id). */
  readonly from?: string;
  /** Only ids < this. */
  readonly until?: string;
  /** Only ids > this (RSM after, after-id). */
  readonly after?: string;
  /** Only ids < this (RSM before, before-id). */
  readonly before?: string;
  /** Only messages with this bare (or, with `withResource`, full) JID. */
  readonly with?: string;
  readonly withResource?: string;
  /** At most this many. */
  readonly max: number;
  /** The last `max` of the range instead of the first. */
  readonly last: boolean;
}

export interface ArchivePage {
  /** Oldest first. */
  readonly messages: ArchivedMessage[];
  /** True when the range holds nothing beyond `messages` in the direction read. */
  readonly complete: boolean;
}

/** XEP-0357: one push service (and node) a user enabled, with what a notification carries. */
export interface PushRegistration {
  /** The push service's JID (`enable jid=`), one of Config.pushServices. */
  readonly service: string;
  readonly node: string;
  /** The `publish-options` form the client gave, serialised; sent with each notification. */
  readonly options?: string;
}

/** What a registration has waiting to be told (lib/push.ts, coalescing). */
export interface PushPending extends PushRegistration {
  /** Messages not yet covered by a notification. */
  readonly pending: number;
  /** The user's waiting messages when the last of them came (the summary's message-count). */
  readonly count: number;
  readonly sender?: string;
  readonly body?: string;
  /** Epoch ms of the last notification sent. */
  readonly notifiedAt?: number;
  /** Epoch ms a notification job is due, while one is queued. */
  readonly scheduledFor?: number;
}

/** An account for each user named, in the same positions (Store.getAccounts). */
export type AccountsOf<Users extends readonly string[]> = { -readonly [K in keyof Users]: Account };

export interface Account {
  readonly exists: boolean;
  /** Epoch ms the account was created: its archive starts there (an earlier account of the name is not shown). */
  readonly createdAt?: number;
  /** XEP-0313 preferences; undefined means the default (always). */
  readonly archivePrefs?: ArchivePrefs;
  readonly sessions: SessionRecord[];
  /** XEP-0191: the JIDs this user blocks. */
  readonly blocks: ReadonlySet<string>;
  /** The users who block this user (the reverse entries), so one read answers both ways. */
  readonly blockedBy: ReadonlySet<string>;
  /** XEP-0357 registrations, read with the account at no extra request. */
  readonly push: readonly PushRegistration[];
}

/** XEP-0045 §5.2 affiliations and roles. */
export type Affiliation = 'owner' | 'admin' | 'member' | 'outcast' | 'none';
export type Role = 'moderator' | 'participant' | 'visitor' | 'none';

/** XEP-0045 §10.2 room configuration (the subset this server supports). */
export interface RoomConfig {
  readonly name: string;
  readonly description: string;
  readonly persistent: boolean;
  readonly membersOnly: boolean;
  readonly public: boolean;
  readonly maxUsers: number;
  /** Messages kept for history and for the rejoin drain. */
  readonly historyLength: number;
  /** XEP-0313 queries on the room (muc#roomconfig_enablearchiving); absent in rooms made before it: on. */
  readonly archive?: boolean;
}

/** A room's own item: configuration, lock and subject. */
export interface RoomRecord {
  /** The room's bare JID. */
  readonly room: string;
  readonly config: RoomConfig;
  /** XEP-0045 §10.1.1: a new room is locked until its owner configures it. */
  readonly locked: boolean;
  readonly subject?: string;
  /** The occupant JID (room@service/nick) that set the subject. */
  readonly subjectFrom?: string;
  readonly createdAt: number;
}

/** One joined session (full JID) in a room. */
export interface Occupant {
  readonly room: string;
  /** The occupant's real full JID. */
  readonly jid: string;
  readonly nick: string;
  readonly connectionId: string;
  readonly role: Role;
  readonly affiliation: Affiliation;
  readonly expiresAt: number;
}

/** An item DynamoDB's TTL deleted that ends something (server.ts onExpired). */
export type ExpiredItem =
  | {
      readonly kind: 'connection';
      readonly connection: Pick<ConnectionRecord, 'connectionId' | 'user' | 'resource' | 'expiresAt'>;
    }
  | { readonly kind: 'occupant'; readonly occupant: Occupant };

/** What a join or an admin request needs, in one query. */
export interface RoomState {
  readonly room?: RoomRecord;
  /** Bare JID -> affiliation (none is never stored). */
  readonly affiliations: ReadonlyMap<string, Affiliation>;
  readonly occupants: Occupant[];
  /** The nick each affiliated user last left the room with (XEP-0357 mentions: muc/mentions.ts). */
  readonly memberNicks?: ReadonlyMap<string, string>;
}

/** A groupchat message (or subject change), stored once per room. */
export interface RoomMessage {
  readonly room: string;
  /** Room-assigned order; also the XEP-0359 stanza id by the room. */
  readonly seq: string;
  /** The stanza as reflected: from room@service/nick, without `to`, with the stanza-id. */
  readonly stanza: string;
  readonly postedAt: number;
  readonly expiresAt: number;
}

export interface Store {
  createConnection(record: ConnectionRecord): Promise<void>;
  getConnection(connectionId: string): Promise<ConnectionRecord | undefined>;
  saveConnection(record: ConnectionRecord): Promise<void>;
  deleteConnection(connectionId: string): Promise<void>;
  /** Marks the connection as ending (session.ts, the close fence). */
  markClosing(connectionId: string, at: number): Promise<void>;
  /** Marks it unless another end marked it after `staleBefore`; true when this one did. */
  claimClosing(connectionId: string, at: number, staleBefore: number): Promise<boolean>;
  /** Strongly consistent: true when the connection is gone or ending. */
  isClosing(connectionId: string): Promise<boolean>;

  getUser(user: string): Promise<UserRecord | undefined>;
  putUser(record: UserRecord): Promise<void>;
  deleteUser(user: string): Promise<boolean>;
  /** Creates the account unless the name is taken (XEP-0077); false when it was. */
  createUser(record: UserRecord): Promise<boolean>;
  /**
   * Deletes what an account kept under its name: credentials, sessions, presence, blocklist,
   * roster and inbox (lib/register.ts). Others' blocks of the name stay.
   */
  purgeAccount(user: string): Promise<void>;
  /** Counts one registration attempt from `address` this hour; false once `limit` is reached. */
  countRegistration(address: string, limit: number, now: number): Promise<boolean>;
  listUsers(): Promise<string[]>;
  /** A random secret kept in the table, created on first use (fake SCRAM salts). */
  getServerSecret(): Promise<Buffer>;

  /** Binds a session and returns the connection it replaced, if any. */
  putSession(session: SessionRecord): Promise<SessionRecord | undefined>;
  getSessions(user: string): Promise<SessionRecord[]>;
  /** Removes the session only while it still belongs to this connection. */
  deleteSession(user: string, resource: string, connectionId: string): Promise<void>;
  /**
   * Changes a session only while it still belongs to this connection. A new drain lease starts
   * with nothing held.
   */
  updateSession(
    user: string,
    resource: string,
    connectionId: string,
    changes: Pick<SessionRecord, 'available' | 'priority' | 'drainingUntil'>,
  ): Promise<void>;
  /**
   * Renews the drain lease while the gate is still closed (and, given `current`, while the drain
   * is still that one: its id is its first lease's value), or (with undefined) ends it and
   * forgets what was held for the drain; only while the session is this connection's. False
   * when nothing changed.
   */
  setDraining(
    user: string,
    resource: string,
    connectionId: string,
    until: number | undefined,
    current?: number,
  ): Promise<boolean>;
  /**
   * The drain gate from a sender's side (offline.ts): adds a stored message to what the
   * session's drain must bring, in the order senders add them, only while the gate is closed
   * (the lease runs at `now`). False when it is open, or the session is gone or replaced: the
   * sender pushes the message itself.
   */
  holdForDrain(
    session: Pick<SessionRecord, 'user' | 'resource' | 'connectionId'>,
    message: Pick<StoredMessage, 'sender' | 'id'>,
    now: number,
  ): Promise<boolean>;
  /**
   * Ends the drain lease, but only if exactly `handled` messages are held (none was held since
   * the drain last looked). Otherwise nothing changes and the answer is every held message's
   * reference, in the order they were held (`heldMessages` reads them); 'gone' when the session
   * is no longer this connection's.
   */
  openDrainGate(
    user: string,
    resource: string,
    connectionId: string,
    handled: number,
  ): Promise<'open' | 'gone' | readonly string[]>;
  /** RFC 6121 §2.1.6 roster pushes, or XEP-0191 §3.3 blocklist pushes. */
  markInterested(
    user: string,
    resource: string,
    connectionId: string,
    what?: 'roster' | 'blocklist',
  ): Promise<void>;

  /** XEP-0191: the user's blocklist. */
  getBlocklist(user: string): Promise<string[]>;
  block(user: string, jids: readonly string[]): Promise<void>;
  /** Unblocks the given JIDs (all when none are given); returns those that were unblocked. */
  unblock(user: string, jids?: readonly string[]): Promise<string[]>;

  getRoster(user: string): Promise<Roster>;
  getRosterItem(user: string, contact: string): Promise<RosterItem | undefined>;
  /** Saves an item; returns the new roster version, or 'full' when adding it would pass `limit`. */
  saveRosterItem(
    user: string,
    item: RosterItem,
    options: { adds: boolean; limit: number },
  ): Promise<number | 'full'>;
  /** Removes an item; returns the new roster version. */
  removeRosterItem(user: string, contact: string, options: { listed: boolean }): Promise<number>;

  /** Available resources of many users, in batched requests. */
  getPresences(users: readonly string[]): Promise<Map<string, PresenceEntry[]>>;
  setPresence(user: string, entry: PresenceEntry): Promise<void>;
  /** Removes a resource's entry while it still belongs to the connection; returns it. */
  removePresence(user: string, resource: string, connectionId: string): Promise<PresenceEntry | undefined>;

  /** Whether the user exists, and their sessions: one request (strongly consistent by default). */
  getAccount(user: string, options?: { consistent?: boolean }): Promise<Account>;
  /** Several users' accounts, in the order asked: one request, strongly consistent. */
  getAccounts<const Users extends readonly string[]>(users: Users): Promise<AccountsOf<Users>>;

  /**
   * Stores a message unless (recipient, sender, id) is stored already; then returns that one.
   * `listed`: the drain will find it (false while it is being pushed live: no index entry,
   * half the writes; `listForDrain` lists it when the push fails, a drain's start lists
   * whatever is left unlisted).
   */
  storeMessage(
    message: StoredMessage,
    options: { listed: boolean },
  ): Promise<{ stored: true } | { stored: false; existing: StoredMessage; delivered: boolean }>;
  /** Puts a message stored unlisted in the drain's order. */
  listForDrain(message: Pick<StoredMessage, 'recipient' | 'sender' | 'id' | 'seq'>): Promise<void>;
  /** Lists every undelivered message of the user that is not listed yet (a drain's start). */
  listUnlisted(recipient: string): Promise<number>;
  /**
   * Marks one message delivered; false when it was unknown or delivered already, else where
   * its sender was (when it was stored with a route).
   */
  markDelivered(recipient: string, sender: string, id: string): Promise<false | { route?: SenderRoute }>;
  markAllDelivered(messages: readonly Pick<StoredMessage, 'recipient' | 'sender' | 'id'>[]): Promise<void>;
  /**
   * The messages `held` names (openDrainGate's references), in that order; undefined for one
   * delivered, expired or unknown.
   */
  heldMessages(recipient: string, held: readonly string[]): Promise<(StoredMessage | undefined)[]>;
  /** Undelivered, unexpired messages in storage order, after `after` when given. */
  undelivered(recipient: string, limit: number, after?: string): Promise<InboxPage>;
  /**
   * Counts a message stored for an offline user: the messages now waiting (the push summary's
   * message-count), or false when the quota is reached.
   */
  reserveOfflineSlot(recipient: string, quota: number): Promise<number | false>;
  /** The user drained their inbox: the offline count starts again. */
  resetOfflineCount(recipient: string): Promise<void>;

  // XEP-0313 archives (lib/archive.ts) and XEP-0280 carbons (lib/carbons.ts).
  /** Writes a message into users' archives (one batch request for both sides). */
  archive(
    entries: readonly { readonly user: string; readonly message: ArchivedMessage }[],
    expiresAt: number,
  ): Promise<void>;
  /** One page of an archive: one query (more only when `with` filters many out). */
  queryArchive(owner: ArchiveOwner, range: ArchiveRange): Promise<ArchivePage>;
  /** The archived messages with these ids, oldest first (unknown ids are left out). */
  getArchived(owner: ArchiveOwner, ids: readonly string[]): Promise<ArchivedMessage[]>;
  setArchivePrefs(user: string, prefs: ArchivePrefs): Promise<void>;
  /** Turns carbons on or off for the session, only while it is this connection's. */
  setCarbons(user: string, resource: string, connectionId: string, enabled: boolean): Promise<void>;
  /**
   * XEP-0352: marks the session inactive or active, on its item and on its presence entry (when
   * it has one), each only while it is this connection's.
   */
  setInactive(user: string, resource: string, connectionId: string, inactive: boolean): Promise<void>;

  // XEP-0357 push (lib/push.ts). Keys: the table at the top of store/push.ts.
  /** Enables (or updates the options of) a registration. */
  enablePush(user: string, registration: PushRegistration): Promise<void>;
  /** Removes these registrations. */
  disablePush(user: string, registrations: readonly PushRegistration[]): Promise<void>;
  /**
   * Adds one message to what the registration has waiting; returns what it had before, or
   * undefined when the registration is gone.
   */
  addPushPending(
    user: string,
    registration: PushRegistration,
    message: { readonly count: number; readonly sender: string; readonly body?: string },
  ): Promise<PushPending | undefined>;
  /** Notes that a notification job is queued, due at `at`. */
  schedulePush(user: string, registration: PushRegistration, at: number): Promise<void>;
  /** What the registration has waiting (strongly consistent), or undefined when it is gone. */
  getPushPending(user: string, registration: PushRegistration): Promise<PushPending | undefined>;
  /** A notification covering `covered` messages was sent at `at` (none is queued now); returns how many still wait. */
  notePushSent(user: string, registration: PushRegistration, covered: number, at: number): Promise<number>;

  // XEP-0045 rooms (lib/muc/). Keys: the table at the top of store/rooms.ts.
  /** Room item, affiliations and occupants: one query. */
  getRoomState(room: string): Promise<RoomState>;
  /** Occupants only: one query, reads grow with the list's bytes. */
  getOccupants(room: string): Promise<Occupant[]>;
  /** Creates the room unless it exists; false when it did. */
  createRoom(record: RoomRecord): Promise<boolean>;
  saveRoom(record: RoomRecord): Promise<void>;
  /** Public rooms, for disco#items. */
  listPublicRooms(): Promise<{ room: string; name: string }[]>;
  deleteRoom(room: string): Promise<void>;
  putOccupant(occupant: Occupant): Promise<void>;
  /** Removes the occupant while it still belongs to the connection; returns it. */
  removeOccupant(room: string, jid: string, connectionId: string): Promise<Occupant | undefined>;
  setAffiliation(room: string, user: string, affiliation: Affiliation): Promise<void>;
  /** Keeps the nick an affiliated user left with, on their affiliation item (nothing for others). */
  noteMemberNick(room: string, user: string, nick: string): Promise<void>;
  /** `sender`: the occupant JID, kept for XEP-0313 `with` queries. */
  storeRoomMessage(message: RoomMessage, sender?: string): Promise<void>;
  /** Newest first: up to `limit` messages with seq after `after` (when given). */
  roomHistory(room: string, limit: number, after?: string): Promise<RoomMessage[]>;
  /** The seq of the room's newest message, or of the newest one older than `before`. */
  lastRoomSeq(room: string, before?: string): Promise<string | undefined>;
  /** The last room message the server pushed to the member (the rejoin drain starts after it). */
  getPushedMarker(room: string, user: string): Promise<string | undefined>;
  setPushedMarker(room: string, user: string, seq: string): Promise<void>;
  /** Moves an existing marker back to `seq`; a lower one, or none, stays as it is. */
  lowerPushedMarker(room: string, user: string, seq: string): Promise<void>;
  /** The session's room pool: the rooms a connection joined. */
  addJoinedRoom(connectionId: string, room: string, expiresAt: number): Promise<void>;
  removeJoinedRoom(connectionId: string, room: string): Promise<void>;
  getJoinedRooms(connectionId: string): Promise<string[]>;
  deleteJoinedRooms(connectionId: string): Promise<void>;

  /**
   * XEP-0363 (store/uploads.ts): adds `bytes` to the user's count for the UTC day of `now` unless
   * that would pass `limit`; false then (nothing counted).
   */
  countUpload(user: string, bytes: number, limit: number, now: number): Promise<boolean>;
}

/**
 * What became of one post. Only 'gone' says the connection is over; after 'too-large' and
 * 'failed' the connection lives on and only this frame was not delivered.
 */
export type PostResult =
  | 'ok'
  | 'gone' // 410: the connection no longer exists
  | 'too-large' // 413: over API Gateway's 128 KB per message
  | 'failed'; // throttled (429) or a server error (5xx) on every try, or refused otherwise

export interface PostOptions {
  /** Epoch ms the routing read this post is based on started (session.ts, the close fence). */
  readonly routedAt?: number;
}

export interface Gateway {
  /**
   * Sends one text frame. Throttling and server errors are retried a few times within a
   * bounded time (lib/gateway/management-api.ts); the result is never thrown.
   */
  post(connectionId: string, frame: string, options?: PostOptions): Promise<PostResult>;
  /** Closes the WebSocket (DeleteConnection). Closing a gone connection is not an error. */
  close(connectionId: string): Promise<void>;
}

/** A job for the push function (lib/push.ts): one message to tell, or a notification due. */
export type PushJob =
  | {
      readonly kind: 'message';
      readonly user: string;
      readonly registration: PushRegistration;
      readonly count: number;
      /** The sender's full JID (a room's occupant JID for a mention). */
      readonly sender: string;
      readonly body?: string;
    }
  | {
      readonly kind: 'notify';
      readonly user: string;
      readonly registration: PushRegistration;
      /** Tries so far (retries with backoff after the app server failed). */
      readonly attempt: number;
    };

/** The queue of push jobs: a standard SQS queue on AWS, the same API on the emulator. */
export interface PushJobs {
  send(jobs: readonly PushJob[], delaySeconds?: number): Promise<void>;
  /** A job that failed every try: kept for an operator (the dead-letter queue, alarmed). */
  deadLetter(job: PushJob, reason: string): Promise<void>;
}

/** What the app server answered to a notification POST, or `failed` (no answer in time). */
export type PushPostResult = { readonly status: number } | 'failed';

/** Delivery of notifications to app servers (lib/gateway/push-delivery.ts). */
export interface PushDelivery {
  /** POSTs the XEP-0357 publish, signed, to the service's endpoint. */
  post(url: string, body: string): Promise<PushPostResult>;
  /** Puts the notification on the EventBridge bus, when the deployment asked for it. */
  event?(detail: Record<string, unknown>): Promise<void>;
}

/** Hands work to a later invocation, in the connection's order (the FIFO queue). */
export interface Continuations {
  continueDrain(connectionId: string, after: string): Promise<void>;
}

/**
 * The `eventType` of a continuation's record in the frames queue (API Gateway's are MESSAGE and
 * DISCONNECT). Here rather than beside the SQS adapter: the frames function reads it on every
 * record, and importing the adapter would load the SQS client at every start (infra/bundle.ts).
 */
export const CONTINUE_EVENT = 'CONTINUE';

/**
 * Work due after a delay, outside the connection's order (lib/limits.ts): a delayed message
 * on a standard SQS queue on AWS (gateway/sqs-deadlines.ts), a timer locally.
 */
export interface Deadlines {
  /** Has `closeIfUnauthenticated` run for the connection `seconds` from now (1 to 900). */
  authDeadline(connectionId: string, seconds: number): Promise<void>;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The counters the service publishes (CloudWatch metrics in EMF on Lambda; lib/metrics.ts). */
export type MetricName =
  | 'StanzasHandled'
  | 'MessagesStored'
  | 'MessagesDelivered'
  | 'MessagesDrained'
  | 'ReceiptsRouted'
  | 'GoneConnections'
  | 'SaslFailures'
  | 'PushNotificationsSent'
  | 'PushNotificationsFailed';

export interface Metrics {
  /** Adds `value` (default 1) to the counter; published at the end of the invocation. */
  count(name: MetricName, value?: number): void;
}

/**
 * XEP-0363 slots (lib/upload.ts): S3 presigned PUTs and the GET URLs files are read at
 * (gateway/s3-uploads.ts; the local system serves the same URLs, infra/local/uploads.ts).
 */
export interface Uploads {
  /** A PUT URL for exactly this object: its Content-Length and Content-Type are signed. */
  presignPut(
    path: string,
    file: { readonly size: number; readonly contentType: string; readonly expiresInSeconds: number },
  ): Promise<string>;
  /** Where the object at `path` (under the upload prefix) is read. */
  getUrl(path: string): string;
}

/** Everything a core function needs, passed in. */
export interface Context {
  readonly store: Store;
  readonly gateway: Gateway;
  readonly continuations: Continuations;
  /** Absent where nothing comes back later (the core called directly, as benchmarks do). */
  readonly deadlines?: Deadlines;
  /** XEP-0357 jobs; absent where no push service is configured. */
  readonly pushJobs?: PushJobs;
  /** The push function's way out to app servers. */
  readonly pushDelivery?: PushDelivery;
  readonly config: Config;
  readonly logger: Logger;
  /** Absent where nothing collects metrics (the local system). */
  readonly metrics?: Metrics;
  /** XEP-0363 slots; absent where no upload storage is configured (then no slots are given). */
  readonly uploads?: Uploads;
  readonly now: () => number;
  /**
   * Milliseconds left in this invocation (Lambda's getRemainingTimeInMillis), for work that
   * stops early and continues later (the drain); absent means no limit. Set and cleared per
   * invocation by functions/runtime.ts.
   */
  remainingMs?: (() => number) | undefined;
}
