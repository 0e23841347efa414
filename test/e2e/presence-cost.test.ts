// Presence fan-out, counted: posts follow the online contacts (K), and the number of
// DynamoDB requests does not follow the number of contacts (N): reads are batched.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  formatPresenceReport,
  measurePresenceCost,
  postsSavedPerInactiveSession,
} from '../../bench/presence-cost.ts';

describe('presence cost', () => {
  test('posts grow with online contacts; requests do not grow with contacts', async (t) => {
    const small = await measurePresenceCost(20, 2);
    const large = await measurePresenceCost(120, 6);
    t.diagnostic(formatPresenceReport(small));
    t.diagnostic(formatPresenceReport(large));
    // Login: the broadcast to K contacts and K probe answers, nothing per offline contact
    // (plus the ping answer that marks the end of each step).
    assert.equal(small.login.posts, 2 * 2 + 1);
    assert.equal(large.login.posts, 2 * 6 + 1);
    assert.equal(large.change.posts, 6 + 1);
    // XEP-0352: with the online contacts inactive the change costs only the marker's post,
    // and a contact back to active gets the user's presence (one post, and its marker).
    assert.equal(large.changeInactive.posts, 1);
    assert.equal(postsSavedPerInactiveSession(large), 1);
    assert.equal(large.active.posts, 1 + 1);
    assert.equal(large.logout.posts, 6 + 1); // unavailable to each online contact, and <close/>
    // One BatchGetItem holds 100 keys: 120 contacts take one request more than 20, not 100 more.
    assert.ok(large.login.dynamoRequests - small.login.dynamoRequests <= 2, JSON.stringify([small, large]));
    assert.ok(large.logout.dynamoRequests - small.logout.dynamoRequests <= 2);
  });
});
