// What `cdk deploy` would ship, read back for the local system: synthesises infra/stack.ts in
// process with bundling on (each function's esbuild bundle, exactly as deployed), then reads the
// template for each Lambda function: its bundle, handler, timeout, memory, its environment, and
// what invokes it (the $connect route, the frames queue, the table's stream).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { XmppStack, type XmppStackProps } from '../stack.ts';

/** A value in a CloudFormation template: a string, or an intrinsic function. */
export type TemplateValue = string | number | boolean | { [key: string]: unknown } | unknown[];

export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface Template {
  readonly Resources: Record<string, TemplateResource>;
}

export interface SynthesizedFunction {
  readonly logicalId: string;
  /** The bundle's folder (LAMBDA_TASK_ROOT), holding index.mjs. */
  readonly assetDir: string;
  /** `index.handler`: the module in assetDir and its export. */
  readonly handler: string;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
  /** As the template has it: strings, and references to other resources. */
  readonly environment: Record<string, TemplateValue>;
  /** Its event source mapping: a queue or the table's stream; absent for $connect. */
  readonly eventSource?: { readonly sourceId: string; readonly batchSize?: number };
}

export interface SynthesizedQueue {
  readonly logicalId: string;
  readonly fifo: boolean;
  /** Its redrive policy: receives before the dead-letter queue. */
  readonly maxReceiveCount?: number;
}

export interface SynthesizedStack {
  readonly template: Template;
  readonly functions: readonly SynthesizedFunction[];
  /** Invoked by the $connect route. */
  readonly connect: SynthesizedFunction;
  /** Consumes the frames FIFO queue (the $default and $disconnect routes feed it). */
  readonly frames: SynthesizedFunction;
  /** Consumes the table's stream. */
  readonly expired: SynthesizedFunction;
  /** Consumers of the other queues (standard queues the functions send to), with their queue. */
  readonly queueConsumers: readonly { readonly fn: SynthesizedFunction; readonly queue: SynthesizedQueue }[];
  /** Every queue with a consumer, by logical id. */
  readonly queues: ReadonlyMap<string, SynthesizedQueue>;
  /** The stage's name (the Management API's path starts with it). */
  readonly stageName: string;
  /** Logical id of the frames FIFO queue (its Ref is the FRAMES_QUEUE_URL). */
  readonly framesQueueId: string;
  /** Logical id of the table. */
  readonly tableId: string;
}

/** The stack as `cdk synth` builds it, into `outdir`, bundles included. */
export function synthesizeStack(outdir: string, props: XmppStackProps = {}): SynthesizedStack {
  // Bundling runs for every stack (the default); template-only tests switch it off instead.
  // Asset metadata names each function's bundle folder, as the CLI's synth does. The built-in
  // template validation (a WASM rule engine, most of a synth's time) changes nothing that is
  // deployed; `cdk synth` and test/infra run it.
  const app = new App({
    outdir,
    analyticsReporting: false,
    builtinCloudFormationValidation: false,
    context: { 'aws:cdk:enable-asset-metadata': true },
  });
  const stack = new XmppStack(app, 'XmppStack', props);
  const assembly = app.synth();
  const artifact = assembly.getStackArtifact(stack.artifactId);
  return readSynthesizedStack(artifact.template as Template, assembly.directory);
}

export function readSynthesizedStack(template: Template, assemblyDir: string): SynthesizedStack {
  const resources = Object.entries(template.Resources);
  const ofType = (type: string) => resources.filter(([, resource]) => resource.Type === type);
  const one = (type: string) => {
    const found = ofType(type);
    if (found.length !== 1) throw new Error(`expected one ${type} in the template, found ${found.length}`);
    return found[0] as [string, TemplateResource];
  };

  const functions = new Map<string, SynthesizedFunction>();
  for (const [logicalId, fn] of ofType('AWS::Lambda::Function')) {
    const properties = fn.Properties ?? {};
    const assetPath = fn.Metadata?.['aws:asset:path'];
    if (typeof assetPath !== 'string') throw new Error(`${logicalId} has no bundled asset`);
    const assetDir = join(assemblyDir, assetPath);
    const handler = String(properties.Handler);
    const module = join(assetDir, `${handler.slice(0, handler.lastIndexOf('.'))}.mjs`);
    if (!existsSync(module)) throw new Error(`${logicalId}: ${module} was not bundled`);
    functions.set(logicalId, {
      logicalId,
      assetDir,
      handler,
      timeoutSeconds: Number(properties.Timeout ?? 3),
      memorySize: Number(properties.MemorySize ?? 128),
      environment:
        (properties.Environment as { Variables?: Record<string, TemplateValue> } | undefined)?.Variables ??
        {},
    });
  }
  const fn = (logicalId: string) => functions.get(logicalId) ?? missing(`function ${logicalId}`);

  const queues = new Map<string, SynthesizedQueue>();
  let frames: SynthesizedFunction | undefined;
  let expired: SynthesizedFunction | undefined;
  let framesQueueId = '';
  const queueConsumers: { fn: SynthesizedFunction; queue: SynthesizedQueue }[] = [];
  for (const [, mapping] of ofType('AWS::Lambda::EventSourceMapping')) {
    const properties = mapping.Properties ?? {};
    const [sourceId, attribute] = getAtt(properties.EventSourceArn);
    const source = template.Resources[sourceId];
    const consumer: SynthesizedFunction = {
      ...fn(refOf(properties.FunctionName)),
      eventSource: { sourceId, batchSize: properties.BatchSize as number | undefined },
    };
    functions.set(consumer.logicalId, consumer);
    if (source?.Type === 'AWS::SQS::Queue' && attribute === 'Arn') {
      const redrive = source.Properties?.RedrivePolicy as { maxReceiveCount?: number } | undefined;
      const queue = {
        logicalId: sourceId,
        fifo: source.Properties?.FifoQueue === true,
        maxReceiveCount: redrive?.maxReceiveCount,
      };
      queues.set(sourceId, queue);
      if (queue.fifo) {
        if (frames) throw new Error('the local system knows one FIFO queue, the frames queue');
        frames = consumer;
        framesQueueId = sourceId;
      } else queueConsumers.push({ fn: consumer, queue });
    } else if (source?.Type.startsWith('AWS::DynamoDB::') && attribute === 'StreamArn') {
      expired = consumer;
    } else {
      throw new Error(`the local system does not run event source ${sourceId} (${source?.Type})`);
    }
  }
  const [, connectRoute] =
    ofType('AWS::ApiGatewayV2::Route').find(([, route]) => route.Properties?.RouteKey === '$connect') ??
    missing('the $connect route');
  const integrationId = connectIntegration(connectRoute.Properties?.Target);
  const integrationUri = template.Resources[integrationId]?.Properties?.IntegrationUri;
  const connectId = JSON.stringify(integrationUri).match(/"Fn::GetAtt":\["([^"]+)","Arn"\]/)?.[1];
  if (!connectId) throw new Error('the $connect integration invokes no function of this stack');

  const [, stage] = one('AWS::ApiGatewayV2::Stage');
  const [tableId] = ofType('AWS::DynamoDB::GlobalTable').concat(ofType('AWS::DynamoDB::Table'))[0] ?? [];
  const connect = fn(connectId);
  const invoked = new Set([connect, frames, expired, ...queueConsumers.map((c) => c.fn)]);
  for (const each of functions.values()) {
    if (!invoked.has(each)) throw new Error(`nothing in the local system invokes ${each.logicalId}`);
  }
  return {
    template,
    functions: [...functions.values()],
    connect,
    frames: frames ?? missing('the frames queue consumer'),
    expired: expired ?? missing('the stream consumer'),
    queueConsumers,
    queues,
    stageName: String(stage.Properties?.StageName),
    framesQueueId,
    tableId: tableId ?? missing('the table'),
  };
}

/** Reads a synthesised template from disk (for a `cdk synth` output). */
export function readTemplate(path: string): Template {
  return JSON.parse(readFileSync(path, 'utf8')) as Template;
}

function refOf(value: unknown): string {
  const ref = (value as { Ref?: unknown } | undefined)?.Ref;
  if (typeof ref !== 'string') throw new Error(`expected a Ref, got ${JSON.stringify(value)}`);
  return ref;
}

function getAtt(value: unknown): [string, string] {
  const att = (value as { 'Fn::GetAtt'?: unknown } | undefined)?.['Fn::GetAtt'];
  if (!Array.isArray(att) || att.length !== 2)
    throw new Error(`expected Fn::GetAtt, got ${JSON.stringify(value)}`);
  return [String(att[0]), String(att[1])];
}

/** A route's target is `integrations/` joined with the integration's Ref. */
function connectIntegration(target: unknown): string {
  const match = JSON.stringify(target).match(/"Ref":"([^"]+)"/);
  return match?.[1] ?? missing('the $connect integration');
}

function missing(what: string): never {
  throw new Error(`${what} is not in the template`);
}
