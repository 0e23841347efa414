// Issue 6's "login and logout of a user with 100 contacts": initial presence (broadcast to
// the contacts, probes of the online ones, the drain check), a presence change, and the
// logout (unavailable to the contacts). The roster landed while the benchmark was written;
// the measurement itself is bench/presence-cost.ts (on its own local system, raw clients),
// reported here next to the rest.
import { measurePresenceCost, type PresenceCostReport } from './presence-cost.ts';

export type RosterLoginResult = PresenceCostReport;

export interface RosterLoginOptions {
  /** Contacts with subscription both. */
  readonly contacts: number;
  /** How many of them are online (they receive the broadcasts and answer the probes). */
  readonly online: number;
}

export const DEFAULT_ROSTER_LOGIN: RosterLoginOptions = { contacts: 100, online: 10 };

export const ROSTER_LOGIN: { readonly name: string; readonly blocked?: string } = {
  name: 'login and logout of a user with a roster',
};

export function measureRosterLogin(
  options: RosterLoginOptions = DEFAULT_ROSTER_LOGIN,
): Promise<RosterLoginResult> {
  return measurePresenceCost(options.contacts, options.online);
}
