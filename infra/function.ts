// A NodejsFunction with the house defaults: Node.js 22 on arm64, bundled by the local esbuild
// (never Docker) as minified ESM with source maps, its own log group with a retention, and its own
// role that may only write to that log group until the stack grants it exactly what it uses.
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** The repository root: entries are relative to it, and it holds package-lock.json. */
const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** ESM bundles still contain CommonJS dependencies that call `require`. */
const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/**
 * How every function is bundled (esbuild through NodejsFunction), in one place: the benchmark
 * (bench/bundles.ts) builds the same bundles from it to measure their size and cold start.
 */
export const BUNDLING = {
  format: OutputFormat.ESM,
  target: 'node22',
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  // The SDK the tests ran against goes with the code, instead of whatever version the
  // Node.js 22 runtime ships that day; tree-shaken and minified, each bundle stays well
  // under 1 MB (sizes in docs/architecture.md). The local system runs these very bundles
  // (`npm start -- --from-synth`, `npm run test:synth`).
  bundleAwsSDK: true,
} as const;

export interface XmppFunctionProps {
  /** The handler's source, relative to the repository root (e.g. `functions/connect.ts`); exports `handler`. */
  readonly entry: string;
  /** What the function does, shown in the console. */
  readonly description: string;
  /** @default Duration.seconds(10) */
  readonly timeout?: Duration;
  /** @default 512 */
  readonly memorySize?: number;
  /** Names and settings only, besides NODE_OPTIONS (which enables source maps). @default - none */
  readonly environment?: Record<string, string>;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /** Of the log group. @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * Its log group (created explicitly, so that the retention is set) is `fn.logGroup`. No reserved
 * concurrency: it would protect nothing here. API Gateway's stage throttling already bounds
 * `$connect`; the frames function runs one batch per connection with frames waiting (FIFO message
 * groups), and a reservation would only cap that, throttling frames towards the dead-letter queue,
 * while taking the reserved capacity away from the account's other functions.
 */
export class XmppFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: XmppFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): its own group only.
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `${id}: writes its own logs; the stack adds exactly the table, API and queue actions it uses`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      role,
      entry: `${PROJECT_ROOT}${props.entry}`,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(10),
      logGroup,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      bundling: { forceDockerBundling: false, ...BUNDLING, mainFields: [...BUNDLING.mainFields] },
    });
  }
}
