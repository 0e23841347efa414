// The CDK app: `npx cdk deploy -c domain=chat.example.com` (parameters: infra/parameters.ts).
// Environment-agnostic: no lookups, so `npx cdk synth` works offline and without credentials.
import { App } from 'aws-cdk-lib';
import { parseParameters } from './parameters.ts';
import { XmppStack } from './stack.ts';

// No AWS::CDK::Metadata resource: nothing about the app is reported to AWS.
const app = new App({ analyticsReporting: false });
new XmppStack(app, 'XmppStack', {
  description: 'Serverless XMPP over WebSocket: API Gateway, Lambda, SQS FIFO, DynamoDB',
  ...parseParameters((key) => app.node.tryGetContext(key)),
});
app.synth();
