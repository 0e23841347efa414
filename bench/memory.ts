// Lambda memory chosen from figures (docs/costs.md, "Lambda memory"): Lambda gives a function CPU
// in proportion to its memory, one vCPU at 1,769 MB ("Configure Lambda function memory", AWS
// Lambda Developer Guide). A message with its receipt costs C ms of CPU on one full core (measured:
// the server process's CPU per message under load, an upper bound, as it includes the emulator)
// and waits W ms on DynamoDB and PostToConnection (counted requests and posts times their
// modelled p50, infra/local/latency.ts). At M MB the handlers take about C / min(1, M / 1769) + W.
import { AWS_LATENCY } from '../infra/local/latency.ts';
import { PARAMETER_DEFAULTS } from '../infra/parameters.ts';
import { PRICES } from './money.ts';

export const MEMORY_SIZES = [128, 256, 512, 768, 1024, 1536, 1769, 2048, 3008] as const;
/** Lambda's memory for one full vCPU. */
export const ONE_VCPU_MB = 1769;
/** The default is the smallest size whose handler time is within this factor of one full vCPU's. */
export const WITHIN_OF_ONE_VCPU = 1.25;

export interface MemoryRow {
  readonly memoryMb: number;
  /** vCPU share. */
  readonly cpuShare: number;
  /** Expected handler time per message with its receipt (both invocations), ms. */
  readonly handlerMs: number;
  /** Lambda duration (arm64) and requests per million messages, dollars. */
  readonly perMillion: number;
}

export interface MemoryChoice {
  readonly cpuMsPerMessage: number;
  readonly waitMsPerMessage: number;
  readonly invocationsPerMessage: number;
  readonly rows: MemoryRow[];
  /** What the rule picks from these figures. */
  readonly chosenMb: number;
  /** What the stack deploys by default (infra/parameters.ts). */
  readonly defaultMb: number;
}

export function memoryChoice(
  cpuMsPerMessage: number,
  counted: { readonly dynamoRequests: number; readonly posts: number; readonly invocations: number },
): MemoryChoice {
  const waitMsPerMessage =
    counted.dynamoRequests * AWS_LATENCY.dynamoDb.p50Ms + counted.posts * AWS_LATENCY.postToConnection.p50Ms;
  const rows = MEMORY_SIZES.map((memoryMb) => {
    const cpuShare = Math.min(1, memoryMb / ONE_VCPU_MB);
    const handlerMs = cpuMsPerMessage / cpuShare + waitMsPerMessage;
    const perMillion =
      ((memoryMb / 1024) * (handlerMs / 1000) * PRICES.lambdaArmGbSecond +
        counted.invocations * PRICES.lambdaRequest) *
      1e6;
    return {
      memoryMb,
      cpuShare: Math.round(cpuShare * 1000) / 1000,
      handlerMs: Math.round(handlerMs),
      perMillion: Math.round(perMillion * 100) / 100,
    };
  });
  const full = rows.find((row) => row.memoryMb === ONE_VCPU_MB)?.handlerMs ?? 0;
  const chosen = rows.find((row) => row.handlerMs <= WITHIN_OF_ONE_VCPU * full) ?? rows.at(-1);
  return {
    cpuMsPerMessage,
    waitMsPerMessage,
    invocationsPerMessage: counted.invocations,
    rows,
    chosenMb: chosen?.memoryMb ?? PARAMETER_DEFAULTS.memorySize,
    defaultMb: PARAMETER_DEFAULTS.memorySize,
  };
}
