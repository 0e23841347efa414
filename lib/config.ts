// Settings of one deployment. Read from the environment only by the entry points
// (functions/, scripts/), then passed to the core.

export interface Config {
  /** The XMPP domain users live on, e.g. `localhost` or `chat.example.com`. */
  readonly domain: string;
  /** The XEP-0045 service domain, `conference.` + domain by default. */
  readonly mucDomain: string;
  /** Largest frame accepted, in bytes (API Gateway's own limit is 128 KB). */
  readonly maxStanzaBytes: number;
  /** SCRAM iteration count for new passwords (RFC 7677 asks for at least 4096). */
  readonly scramIterations: number;
  /** How long API Gateway keeps a connection at most, in seconds (2 h on AWS). */
  readonly maxConnectionSeconds: number;
}

export const DEFAULTS = {
  domain: 'localhost',
  maxStanzaBytes: 65536,
  scramIterations: 4096,
  maxConnectionSeconds: 7200,
} as const;

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Config {
  const domain = env.XMPP_DOMAIN || DEFAULTS.domain;
  return {
    domain,
    mucDomain: env.MUC_DOMAIN || `conference.${domain}`,
    maxStanzaBytes: positiveInt(env.MAX_STANZA_BYTES, DEFAULTS.maxStanzaBytes),
    scramIterations: positiveInt(env.SCRAM_ITERATIONS, DEFAULTS.scramIterations),
    maxConnectionSeconds: positiveInt(env.MAX_CONNECTION_SECONDS, DEFAULTS.maxConnectionSeconds),
  };
}

function positiveInt(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0)
    throw new Error(`expected a positive integer, got "${value}"`);
  return parsed;
}
