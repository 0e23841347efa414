// RFC 6121 §3 and Appendix A: the presence subscription state machine, as plain
// functions over one roster item's state. The handlers in presence.ts apply them.

export type Subscription = 'none' | 'to' | 'from' | 'both';

/** The subscription part of a roster item (RFC 6121 Appendix A's state names map onto it). */
export interface SubscriptionState {
  readonly subscription: Subscription;
  /** "Pending Out": the user asked to see the contact's presence (`ask="subscribe"`). */
  readonly askOut: boolean;
  /** "Pending In": the contact asked to see the user's presence and waits for an answer. */
  readonly pendingIn: boolean;
}

export const NONE: SubscriptionState = { subscription: 'none', askOut: false, pendingIn: false };

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export interface Transition {
  readonly state: SubscriptionState;
  /** The state changed: push the roster item. */
  readonly changed: boolean;
  /** The stanza goes on to the other party (outbound) or to the user's clients (inbound). */
  readonly deliver: boolean;
}

const hasTo = (s: Subscription) => s === 'to' || s === 'both';
const hasFrom = (s: Subscription) => s === 'from' || s === 'both';
const withTo = (s: Subscription, on: boolean): Subscription =>
  on ? (hasFrom(s) ? 'both' : 'to') : hasFrom(s) ? 'from' : 'none';
const withFrom = (s: Subscription, on: boolean): Subscription =>
  on ? (hasTo(s) ? 'both' : 'from') : hasTo(s) ? 'to' : 'none';

function result(before: SubscriptionState, state: SubscriptionState, deliver: boolean): Transition {
  const changed =
    before.subscription !== state.subscription ||
    before.askOut !== state.askOut ||
    before.pendingIn !== state.pendingIn;
  return { state, changed, deliver };
}

/** The user sends a subscription stanza to the contact (RFC 6121 §3.1.2, §3.2.2, §3.3.2, §3.4.2; A.2). */
export function outbound(before: SubscriptionState, type: SubscriptionType): Transition {
  switch (type) {
    case 'subscribe':
      // Asking again while already subscribed changes nothing but is still sent on.
      return result(before, hasTo(before.subscription) ? before : { ...before, askOut: true }, true);
    case 'subscribed':
      // Only an answer to a pending request counts; pre-approval is not supported.
      if (!before.pendingIn) return result(before, before, false);
      return result(
        before,
        { ...before, subscription: withFrom(before.subscription, true), pendingIn: false },
        true,
      );
    case 'unsubscribe':
      return result(
        before,
        { ...before, subscription: withTo(before.subscription, false), askOut: false },
        true,
      );
    case 'unsubscribed':
      return result(
        before,
        { ...before, subscription: withFrom(before.subscription, false), pendingIn: false },
        hasFrom(before.subscription) || before.pendingIn,
      );
  }
}

/** The contact's subscription stanza arrives for the user (RFC 6121 §3.1.3, §3.2.3, §3.3.3, §3.4.3; A.3). */
export function inbound(before: SubscriptionState, type: SubscriptionType): Transition {
  switch (type) {
    case 'subscribe':
      // Already approved: the server answers for the user (autoReply in presence.ts).
      if (hasFrom(before.subscription)) return result(before, before, false);
      return result(before, { ...before, pendingIn: true }, true);
    case 'subscribed':
      if (!before.askOut) return result(before, before, false);
      return result(
        before,
        { ...before, subscription: withTo(before.subscription, true), askOut: false },
        true,
      );
    case 'unsubscribe':
      if (!hasFrom(before.subscription) && !before.pendingIn) return result(before, before, false);
      return result(
        before,
        { ...before, subscription: withFrom(before.subscription, false), pendingIn: false },
        true,
      );
    case 'unsubscribed':
      if (!hasTo(before.subscription) && !before.askOut) return result(before, before, false);
      return result(
        before,
        { ...before, subscription: withTo(before.subscription, false), askOut: false },
        true,
      );
  }
}

/** Whether the contact receives the user's presence broadcasts. */
export const sendsPresenceTo = (state: SubscriptionState) => hasFrom(state.subscription);
/** Whether the user receives (and probes) the contact's presence. */
export const receivesPresenceFrom = (state: SubscriptionState) => hasTo(state.subscription);
