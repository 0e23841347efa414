// The chat page on AWS (context webClient=true): the files `npm start` serves (infra/web-page.ts)
// in a private S3 bucket that only CloudFront reads (origin access control), over HTTPS only,
// with the page's security headers, and XEP-0156 host-meta beside it (lib/host-meta.ts) so that
// a client that knows only the page's host finds the WebSocket endpoint. The configuration the
// page starts Converse with names the stack's WebSocket URL, written at deploy time.
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  HeadersFrameOption,
  HeadersReferrerPolicy,
  HttpVersion,
  PriceClass,
  ResponseHeadersPolicy,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import { BucketDeployment, CacheControl, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import { HOST_META_HEADERS, hostMetaJrd, hostMetaXrd } from '../lib/host-meta.ts';
import {
  CACHE,
  CONVERSE_DIST,
  configScript,
  DIST_PATH,
  INDEX_HTML,
  SITE_CSS,
  securityHeaders,
  type WebClientSettings,
} from './web-page.ts';

export interface WebClientProps extends WebClientSettings {
  /** Where the WebSocket endpoint lives (`wss://host`), for the page's connect-src. */
  readonly websocketOrigin: string;
  /** Where XEP-0363 files are PUT (the bucket's S3 origin) and read (CloudFront), for the page's CSP. */
  readonly uploadOrigins?: { readonly put: string; readonly get: string };
  readonly removalPolicy: RemovalPolicy;
}

/** Converse's build files the page does not use (infra/web-page.ts distFiles says the same). */
const DIST_EXCLUDES = ['*.map', 'converse.js', 'converse.css', 'website*', 'manifest.json'];

export class WebClient extends Construct {
  public readonly bucket: Bucket;
  public readonly distribution: Distribution;
  /** https://<distribution domain>/ */
  public readonly url: string;

  constructor(scope: Construct, id: string, props: WebClientProps) {
    super(scope, id);
    const destroy = props.removalPolicy === RemovalPolicy.DESTROY;
    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: destroy,
    });

    const headers = securityHeaders(props.websocketOrigin, props.uploadOrigins);
    const pageHeaders = new ResponseHeadersPolicy(this, 'PageHeaders', {
      comment: 'Chat page: only its own files, and the XMPP WebSocket endpoint',
      securityHeadersBehavior: {
        contentSecurityPolicy: {
          contentSecurityPolicy: headers['content-security-policy'] as string,
          override: true,
        },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: HeadersReferrerPolicy.NO_REFERRER, override: true },
        strictTransportSecurity: {
          accessControlMaxAge: Duration.days(365),
          includeSubdomains: false,
          override: true,
        },
      },
    });
    // XEP-0156 §3: host-meta is read by pages on other origins.
    const hostMetaHeaders = new ResponseHeadersPolicy(this, 'HostMetaHeaders', {
      comment: 'XEP-0156 host-meta: readable from any origin',
      corsBehavior: {
        accessControlAllowOrigins: ['*'],
        accessControlAllowMethods: ['GET', 'HEAD'],
        accessControlAllowHeaders: ['*'],
        accessControlAllowCredentials: false,
        originOverride: true,
      },
      securityHeadersBehavior: { contentTypeOptions: { override: true } },
    });

    const origin = S3BucketOrigin.withOriginAccessControl(this.bucket);
    this.distribution = new Distribution(this, 'Distribution', {
      comment: `Chat page for ${props.domain}`,
      defaultRootObject: 'index.html',
      httpVersion: HttpVersion.HTTP2_AND_3,
      priceClass: PriceClass.PRICE_CLASS_100,
      defaultBehavior: {
        origin,
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: pageHeaders,
        compress: true,
      },
      additionalBehaviors: {
        '/.well-known/*': {
          origin,
          viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: AllowedMethods.ALLOW_GET_HEAD,
          cachePolicy: CachePolicy.CACHING_OPTIMIZED,
          responseHeadersPolicy: hostMetaHeaders,
        },
      },
    });
    this.url = `https://${this.distribution.distributionDomainName}/`;

    // Separate deployments because content types and caching differ; none prunes the others' files.
    const deploy = (
      name: string,
      sources: Source[],
      options: { prefix?: string; cache: string; type?: string },
    ) =>
      new BucketDeployment(this, name, {
        sources: sources as never,
        destinationBucket: this.bucket,
        destinationKeyPrefix: options.prefix,
        cacheControl: [CacheControl.fromString(options.cache)],
        ...(options.type ? { contentType: options.type } : {}),
        prune: false,
        memoryLimit: 512,
        distribution: this.distribution,
        distributionPaths: ['/*'],
      });
    deploy('Converse', [Source.asset(CONVERSE_DIST, { exclude: DIST_EXCLUDES })], {
      prefix: DIST_PATH.replace(/^\//, ''),
      cache: CACHE.dist,
    });
    deploy(
      'Page',
      [
        Source.data('index.html', INDEX_HTML),
        Source.data('site.css', SITE_CSS),
        Source.data('config.js', configScript(props)),
      ],
      { cache: CACHE.page },
    );
    deploy('HostMetaXrd', [Source.data('.well-known/host-meta', hostMetaXrd(props.websocketUrl))], {
      cache: CACHE.page,
      type: HOST_META_HEADERS.xrd['content-type'],
    });
    deploy('HostMetaJrd', [Source.data('.well-known/host-meta.json', hostMetaJrd(props.websocketUrl))], {
      cache: CACHE.page,
      type: HOST_META_HEADERS.jrd['content-type'],
    });
    this.acknowledgeNagFindings();
  }

  /** The AwsSolutions findings that stay, with their reasons (test/infra/stack.test.ts). */
  private acknowledgeNagFindings(): void {
    const page =
      'The bucket holds only the public chat page (Converse.js and its configuration), no user data';
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: `${page}; CloudFront is its only reader, and the XMPP traffic is logged by API Gateway`,
    });
    Validations.of(this.distribution).acknowledge(
      {
        id: 'AwsSolutions-CFR1',
        reason: 'A chat page for users wherever they are: no country is refused',
      },
      {
        id: 'AwsSolutions-CFR2',
        reason: `${page}: WAF would guard static files; the XMPP endpoint has its own limits (lib/limits.ts, stage throttling)`,
      },
      {
        id: 'AwsSolutions-CFR3',
        reason: `${page}; request logs of static files would hold only visitors' addresses`,
      },
      {
        id: 'AwsSolutions-CFR4',
        reason:
          "The distribution uses CloudFront's default certificate (*.cloudfront.net), whose security policy CloudFront sets; a custom domain for the page is not offered yet",
      },
    );
    const bucketId = Stack.of(this).resolve((this.bucket.node.defaultChild as CfnBucket).logicalId);
    // BucketDeployment's handler: one function per stack, created by aws-cdk-lib.
    for (const child of Stack.of(this).node.children) {
      if (!child.node.id.startsWith('Custom::CDKBucketDeployment')) continue;
      Validations.of(child).acknowledge(
        {
          id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
          reason: "aws-cdk-lib's BucketDeployment handler role: it only writes its own logs with this policy",
        },
        ...[
          'Action::s3:GetObject*',
          'Action::s3:GetBucket*',
          'Action::s3:List*',
          'Action::s3:DeleteObject*',
          'Action::s3:Abort*',
          'Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*',
          `Resource::<${bucketId}.Arn>/*`,
          // cloudfront:CreateInvalidation, which takes no resource narrower than *.
          'Resource::*',
        ].map((finding) => ({
          id: `AwsSolutions-IAM5[${finding}]`,
          reason:
            "aws-cdk-lib's BucketDeployment handler copies the page's files from the CDK asset bucket into the page's bucket and invalidates the distribution: the grants are aws-cdk-lib's, on those two buckets",
        })),
        {
          id: 'AwsSolutions-L1',
          reason:
            "aws-cdk-lib's BucketDeployment handler: its runtime is chosen by aws-cdk-lib, pinned with the library",
        },
      );
    }
  }
}
