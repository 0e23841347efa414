// What a session costs around its messages, counted: logging in (WebSocket connect, SASL,
// bind, initial presence with nothing waiting and an empty roster), one XEP-0199 ping (what a
// client sends to stay under API Gateway's 10-minute idle limit), and logging out (<close/>,
// then $disconnect). The money model (money.ts) multiplies these per user and month.
import {
  addUsers,
  type BenchSystem,
  type Cost,
  connect,
  difference,
  type MethodCost,
  sendPresence,
  until,
} from './harness.ts';

export interface SessionCost {
  readonly login: Cost;
  readonly ping: Cost;
  readonly logout: Cost;
  /** The login's and logout's units by Store method (serial, so exact). */
  readonly loginByMethod: Record<string, MethodCost>;
  readonly logoutByMethod: Record<string, MethodCost>;
}

export async function measureSessionCost(bench: BenchSystem, user = 'carol'): Promise<SessionCost> {
  const { system } = bench;
  await addUsers(system, [user]);
  // A first login warms the container (the server secret, the SDK clients).
  const warm = await connect(system, user);
  await sendPresence(system, warm);
  await warm.stop();

  let before = bench.cost();
  bench.profile.reset();
  const client = await connect(system, user);
  await sendPresence(system, client);
  const login = difference(bench.cost(), before);
  const loginByMethod = bench.profile.snapshot();

  before = bench.cost();
  const { xml } = client;
  await client.xmpp.send(
    xml(
      'iq',
      { type: 'get', id: 'ping-1', to: system.config.domain },
      xml('ping', { xmlns: 'urn:xmpp:ping' }),
    ),
  );
  await until(() => client.stanzas.some((stanza) => stanza.name === 'iq' && stanza.attrs.id === 'ping-1'));
  await system.api.idle();
  const ping = difference(bench.cost(), before);

  before = bench.cost();
  bench.profile.reset();
  await client.stop();
  const logout = difference(bench.cost(), before);
  return { login, ping, logout, loginByMethod, logoutByMethod: bench.profile.snapshot() };
}
