// A Lambda function with the house defaults: Node.js 22 on arm64, bundled at synth by the local
// esbuild (never Docker) as infra/bundle.ts says, its own log group with a retention, and its own
// role that may only write to that log group until the stack grants it exactly what it uses.
//
// Not a NodejsFunction: that construct writes one file (`--outfile`), and the bundles are split
// into chunks loaded on first use (infra/bundle.ts says why), which esbuild only writes to a
// directory. The asset is that directory, hashed by its content, as NodejsFunction hashes its own.
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { bundleFunction, HANDLER } from './bundle.ts';

/** The repository root: entries are relative to it. */
const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

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
export class XmppFunction extends LambdaFunction {
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
    const entry = `${PROJECT_ROOT}${props.entry}`;
    super(scope, id, {
      role,
      code: Code.fromAsset(PROJECT_ROOT, {
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          // CDK stages an asset once per source path and bundling options, and every function's
          // source path is the project: the entry tells them apart (tryBundle is not compared).
          environment: { ENTRY: props.entry },
          // Never pulled: the local esbuild always bundles (tryBundle answers true).
          image: DockerImage.fromRegistry('dummy'),
          local: {
            tryBundle(outputDir) {
              bundleFunction(entry, outputDir);
              return true;
            },
          },
        },
      }),
      handler: HANDLER,
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(10),
      logGroup,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
    });
  }
}
