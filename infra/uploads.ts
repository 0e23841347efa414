// XEP-0363 files on AWS (lib/upload.ts gives the slots): a private S3 bucket that takes only
// PUTs presigned by the frames function, under UPLOAD_PREFIX, and deletes files after
// uploadRetentionDays; reads go through CloudFront with origin access control, so a GET URL is
// https://<distribution>/<key>/<name> and nobody reads the bucket directly. CloudFront adds what
// the slot cannot (XEP-0363 lets a slot carry only Authorization, Cookie and Expires headers):
// Content-Disposition, computed from the name in the URL by a CloudFront Function (the same
// function the local system runs, lib/upload-files.ts), nosniff and CORS from a response
// headers policy.
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import {
  AllowedMethods,
  CachePolicy,
  Function as CloudFrontFunction,
  Distribution,
  FunctionCode,
  FunctionEventType,
  FunctionRuntime,
  HttpVersion,
  PriceClass,
  ResponseHeadersPolicy,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  HttpMethods,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { UPLOAD_CORS, UPLOAD_PREFIX, VIEWER_RESPONSE_SOURCE } from '../lib/upload-files.ts';

export interface UploadsProps {
  /** Days a file is kept (the lifecycle rule); its GET URL works that long. */
  readonly retentionDays: number;
  /** `destroy` empties and removes the bucket with the stack; `retain` keeps it. */
  readonly removalPolicy: RemovalPolicy;
}

export class Uploads extends Construct {
  public readonly bucket: Bucket;
  public readonly distribution: Distribution;
  /** Where files are read: `https://<distribution domain>`, no slash at the end (UPLOAD_BASE_URL). */
  public readonly baseUrl: string;

  constructor(scope: Construct, id: string, props: UploadsProps) {
    super(scope, id);
    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        { prefix: UPLOAD_PREFIX, expiration: Duration.days(props.retentionDays) },
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      // XEP-0363 §7: browsers PUT from the chat page's origin (the preflight asks for content-type).
      cors: [
        {
          allowedMethods: [HttpMethods.PUT],
          allowedOrigins: ['*'],
          allowedHeaders: [...UPLOAD_CORS.allowedHeaders],
          maxAge: UPLOAD_CORS.maxAgeSeconds,
        },
      ],
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: props.removalPolicy === RemovalPolicy.DESTROY,
    });

    const headers = new ResponseHeadersPolicy(this, 'FileHeaders', {
      comment: 'XEP-0363 files: readable from any origin, never sniffed as another type',
      corsBehavior: {
        accessControlAllowOrigins: ['*'],
        accessControlAllowMethods: ['GET', 'HEAD', 'OPTIONS'],
        accessControlAllowHeaders: ['*'],
        accessControlAllowCredentials: false,
        originOverride: true,
      },
      securityHeadersBehavior: { contentTypeOptions: { override: true } },
    });
    const disposition = new CloudFrontFunction(this, 'ContentDisposition', {
      comment: 'XEP-0363 files: Content-Disposition from the file name in the URL',
      code: FunctionCode.fromInline(VIEWER_RESPONSE_SOURCE),
      runtime: FunctionRuntime.JS_2_0,
    });
    this.distribution = new Distribution(this, 'Distribution', {
      comment: 'XEP-0363 uploaded files',
      httpVersion: HttpVersion.HTTP2_AND_3,
      priceClass: PriceClass.PRICE_CLASS_100,
      defaultBehavior: {
        // Only what is under the prefix can be read: the path is the key and the name.
        origin: S3BucketOrigin.withOriginAccessControl(this.bucket, {
          originPath: `/${UPLOAD_PREFIX.replace(/\/$/, '')}`,
        }),
        viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
        cachePolicy: CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: headers,
        functionAssociations: [{ function: disposition, eventType: FunctionEventType.VIEWER_RESPONSE }],
      },
    });
    this.baseUrl = `https://${this.distribution.distributionDomainName}`;
    this.acknowledgeNagFindings();
  }

  /**
   * Presigned PUTs carry the signer's rights: `fn` may put objects under the prefix, nothing else
   * (no read, no delete, no other key).
   */
  grantPresign(fn: IFunction): void {
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(`${UPLOAD_PREFIX}*`)],
      }),
    );
    const bucketId = Stack.of(this).resolve((this.bucket.node.defaultChild as CfnBucket).logicalId);
    Validations.of(fn.role as IRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${UPLOAD_PREFIX}*]`,
      reason:
        'Object keys are made per slot (a random key and the file name): the function presigns PutObject for any key under the upload prefix, and only there',
    });
  }

  /** The frames function's settings for lib/gateway/s3-uploads.ts (functions/runtime.ts). */
  get environment(): Record<string, string> {
    return { UPLOAD_BUCKET: this.bucket.bucketName, UPLOAD_BASE_URL: this.baseUrl };
  }

  /** The AwsSolutions findings that stay, with their reasons (test/infra/stack.test.ts). */
  private acknowledgeNagFindings(): void {
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'Files are written only with PUT URLs the frames function presigns (it logs each slot: user and size) and read only through CloudFront; request logs would hold users’ addresses and capability URLs',
    });
    Validations.of(this.distribution).acknowledge(
      { id: 'AwsSolutions-CFR1', reason: 'Users share files wherever they are: no country is refused' },
      {
        id: 'AwsSolutions-CFR2',
        reason:
          'GET URLs are capabilities (128 random bits) to immutable files; WAF would only guard reads of them',
      },
      {
        id: 'AwsSolutions-CFR3',
        reason:
          'Access logs would record every capability URL with the reader’s address: the URLs are the secret',
      },
      {
        id: 'AwsSolutions-CFR4',
        reason:
          "The distribution uses CloudFront's default certificate (*.cloudfront.net), whose security policy CloudFront sets",
      },
    );
    // autoDeleteObjects (removalPolicy=destroy only): aws-cdk-lib's provider function.
    for (const child of Stack.of(this).node.children) {
      if (!child.node.id.startsWith('Custom::S3AutoDeleteObjects')) continue;
      Validations.of(child).acknowledge({
        id: 'AwsSolutions-L1',
        reason: "aws-cdk-lib's S3 auto-delete provider: its runtime is chosen by aws-cdk-lib",
      });
    }
  }
}
