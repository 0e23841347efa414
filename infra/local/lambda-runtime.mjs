// The Lambda runtime's part, for one bundle in its own process (started by lambda-process.ts):
// plain Node.js, no TypeScript loader, so the bundle runs exactly as it would on Lambda. It
// imports `$LAMBDA_TASK_ROOT/<module>.mjs` as Lambda does from `_HANDLER`, then handles one
// invocation at a time: an event over IPC, `handler(event, context)`, the result back.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const handlerSetting = process.env._HANDLER ?? 'index.handler';
const separator = handlerSetting.lastIndexOf('.');
const modulePath = join(process.env.LAMBDA_TASK_ROOT ?? '.', `${handlerSetting.slice(0, separator)}.mjs`);
const exportName = handlerSetting.slice(separator + 1);

/** What Lambda reports for an error: its type and message (the stack goes to the log). */
const asError = (error) => ({
  errorType: error?.name ?? 'Error',
  errorMessage: error instanceof Error ? error.message : String(error),
});

const send = (message) => process.send?.(message);

let handler;
try {
  const module = await import(pathToFileURL(modulePath).href);
  handler = module[exportName];
  if (typeof handler !== 'function') throw new Error(`${handlerSetting} is not a function`);
} catch (error) {
  // Lambda's Runtime.ImportModuleError: every invocation of this container fails.
  console.error(error);
  send({ type: 'init-error', error: asError(error) });
  process.exit(1);
}

process.on('message', async ({ requestId, event, deadline }) => {
  const env = process.env;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: `arn:aws:lambda:${env.AWS_REGION}:000000000000:function:${env.AWS_LAMBDA_FUNCTION_NAME}`,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: requestId,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
  try {
    const result = await handler(event, context);
    send({ type: 'result', requestId, result: result === undefined ? null : result });
  } catch (error) {
    console.error(error);
    send({ type: 'error', requestId, error: asError(error) });
  }
});

send({ type: 'ready' });
