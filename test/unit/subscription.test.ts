// The subscription state machine against RFC 6121 Appendix A (A.2 outbound, A.3 inbound).
// States are written as in the RFC: "None + Pending Out", "To + Pending In", and so on.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inbound, outbound, type SubscriptionState, type SubscriptionType } from '../../lib/subscription.ts';

function state(name: string): SubscriptionState {
  const [base = '', ...flags] = name.split(' + ');
  return {
    subscription: base.toLowerCase() as SubscriptionState['subscription'],
    askOut: flags.includes('Pending Out'),
    pendingIn: flags.includes('Pending In'),
  };
}

function name(s: SubscriptionState): string {
  const base = s.subscription[0]?.toUpperCase() + s.subscription.slice(1);
  return [base, ...(s.askOut ? ['Pending Out'] : []), ...(s.pendingIn ? ['Pending In'] : [])].join(' + ');
}

type Row = [before: string, after: string, deliver: boolean];

const OUTBOUND: Record<SubscriptionType, Row[]> = {
  // A.2.1: the user sends subscribe.
  subscribe: [
    ['None', 'None + Pending Out', true],
    ['None + Pending In', 'None + Pending Out + Pending In', true],
    ['From', 'From + Pending Out', true],
    ['To', 'To', true],
    ['Both', 'Both', true],
  ],
  // A.2.2: the user sends unsubscribe.
  unsubscribe: [
    ['None + Pending Out', 'None', true],
    ['To', 'None', true],
    ['To + Pending In', 'None + Pending In', true],
    ['Both', 'From', true],
    ['From + Pending Out', 'From', true],
  ],
  // A.2.3: the user sends subscribed (approval).
  subscribed: [
    ['None + Pending In', 'From', true],
    ['None + Pending Out + Pending In', 'From + Pending Out', true],
    ['To + Pending In', 'Both', true],
    ['None', 'None', false],
    ['Both', 'Both', false],
  ],
  // A.2.4: the user sends unsubscribed (refusal or cancellation).
  unsubscribed: [
    ['None + Pending In', 'None', true],
    ['From', 'None', true],
    ['Both', 'To', true],
    ['From + Pending Out', 'None + Pending Out', true],
    ['None', 'None', false],
  ],
};

const INBOUND: Record<SubscriptionType, Row[]> = {
  // A.3.1: a subscribe arrives for the user.
  subscribe: [
    ['None', 'None + Pending In', true],
    ['None + Pending Out', 'None + Pending Out + Pending In', true],
    ['To', 'To + Pending In', true],
    ['From', 'From', false], // answered by the server (auto-reply)
    ['Both', 'Both', false],
  ],
  // A.3.2: an unsubscribe arrives.
  unsubscribe: [
    ['None + Pending In', 'None', true],
    ['From', 'None', true],
    ['Both', 'To', true],
    ['To + Pending In', 'To', true],
    ['None', 'None', false],
  ],
  // A.3.3: a subscribed arrives.
  subscribed: [
    ['None + Pending Out', 'To', true],
    ['None + Pending Out + Pending In', 'To + Pending In', true],
    ['From + Pending Out', 'Both', true],
    ['None', 'None', false],
    ['To', 'To', false],
  ],
  // A.3.4: an unsubscribed arrives.
  unsubscribed: [
    ['None + Pending Out', 'None', true],
    ['To', 'None', true],
    ['Both', 'From', true],
    ['From + Pending Out', 'From', true],
    ['None', 'None', false],
  ],
};

for (const [direction, table, apply] of [
  ['outbound (A.2)', OUTBOUND, outbound],
  ['inbound (A.3)', INBOUND, inbound],
] as const) {
  describe(`subscription ${direction}`, () => {
    for (const [type, rows] of Object.entries(table)) {
      for (const [before, after, deliver] of rows) {
        test(`${type}: ${before} → ${after}${deliver ? '' : ' (not delivered)'}`, () => {
          const transition = apply(state(before), type as SubscriptionType);
          assert.equal(name(transition.state), after);
          assert.equal(transition.deliver, deliver);
          assert.equal(transition.changed, before !== after);
        });
      }
    }
  });
}
