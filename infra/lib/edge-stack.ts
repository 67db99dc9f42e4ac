import * as cdk from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ses from 'aws-cdk-lib/aws-ses';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { EnvConfig, SERVICES, ServiceName } from './config';
import { SecurityGroups } from './network-stack';
import { dataKey, logGroup, serviceTargetGroup, skipCheckov, title } from './util';

/** The Content-Security-Policy of `/static/*` (the web tier's content-hashed styles, scripts and
 * icons): nothing but this origin's own resources, no plugins, no framing, forms only to itself. */
export const STATIC_CSP =
  "default-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/** The Content-Security-Policy of the storefront's pages: scripts, styles, images and requests from
 * this origin only (product images are under its `/images/`), no inline script, no plugins, no
 * framing, forms only to itself. Inline `style` attributes are allowed (the placeholder thumbnails'
 * colour); `<style>` elements are not. */
export const PAGE_CSP =
  "default-src 'self'; style-src-attr 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/** The Content-Security-Policy of `/images/*`: an image is never a document that can run anything. */
export const IMAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

export interface EdgeStackProps extends cdk.StackProps {
  readonly cfg: EnvConfig;
  readonly vpc: ec2.IVpc;
  readonly securityGroups: SecurityGroups;
  readonly logsKey: kms.IKey;
  readonly secretsKey: kms.IKey;
}

/** Header API Gateway adds to admin requests; the ALB forwards `/admin/*` only when it is present. */
export const GATEWAY_HEADER = 'X-Shop-Gateway';
/**
 * Header CloudFront and API Gateway add to every request they send the ALB, holding the edge
 * token: the services read the viewer's address past the edge only on requests that carry it
 * (`SHOP_EDGE_SECRET`), so a caller going to the ALB directly cannot write its own address into
 * `X-Forwarded-For` (login throttles, limits). Both edges overwrite a value a viewer sends.
 */
export const EDGE_HEADER = 'X-Shop-Edge';
/** Header that carries the shop's own access token on routes where `Authorization` holds the gateway credential. */
export const SHOP_TOKEN_HEADER = 'X-Shop-Authorization';

/**
 * An S3 origin reached through an origin access control, with no bucket policy written by CDK:
 * this stack writes the bucket policy itself, granting CloudFront only the prefix it serves
 * (`images/` of the assets bucket, never `labels/`).
 */
class OacBucketOrigin extends cloudfront.OriginBase {
  constructor(bucket: s3.IBucket, oac: cloudfront.IOriginAccessControl) {
    super(bucket.bucketRegionalDomainName, { originAccessControlId: oac.originAccessControlId });
  }
  protected renderS3OriginConfig(): cloudfront.CfnDistribution.S3OriginConfigProperty {
    return { originAccessIdentity: '' };
  }
}

/**
 * Edge: everything between the internet and the services.
 * - S3 buckets: assets (product images under `images/`, shipping labels under `labels/`) and the
 *   access-log bucket; KMS, versioning, TLS-only policies, public access blocked.
 * - ALB (internet-facing, public subnets): HTTPS listener (TLS 1.2+), HTTP listener that only
 *   redirects to HTTPS; the Services stack adds the API services' path rules, and everything else
 *   goes to the web tier (the listener's default action, its target group made here).
 * - CloudFront (`<domain>`): the storefront's pages from the web tier through the ALB (cached as
 *   their Cache-Control says), `/static/*` from the web tier too (content-hashed, cached a year),
 *   `/images/*` from the assets bucket (origin access control, cached a year), `/api/*` to the ALB
 *   (the `/api` prefix stripped by a CloudFront Function, `/api/admin/*` refused); WAF attached.
 * - API Gateway (`gateway.<domain>`, stage `prod`, 5,000 rps): proxies `/api/{proxy+}` to the ALB;
 *   Cognito authorizer on the shopper routes, IAM on `/api/admin/*`; WAF attached.
 * - WAF web ACLs (CloudFront scope and regional for ALB + API Gateway), logged.
 * - Route 53: `<domain>`/`www` → CloudFront, `gateway` → API Gateway, `api` → ALB as an
 *   active-passive failover pair (primary guarded by health checks of every service's readiness,
 *   secondary the DR region's ALB).
 */
export class EdgeStack extends cdk.Stack {
  readonly alb: elbv2.ApplicationLoadBalancer;
  readonly httpsListener: elbv2.ApplicationListener;
  readonly distribution: cloudfront.Distribution;
  readonly api: apigw.RestApi;
  /** The target group of the HTTPS listener's default action: the web tier's tasks. */
  readonly listenerDefaultTargets: elbv2.ApplicationTargetGroup;
  readonly assetsBucket: s3.Bucket;
  readonly contentKey: kms.Key;
  /** Shared secret API Gateway sends to the ALB on admin routes. */
  readonly gatewayToken: secretsmanager.Secret;
  /** Shared secret both edges send the ALB on every request ({@link EDGE_HEADER}). */
  readonly edgeToken: secretsmanager.Secret;
  /** Route 53 health checks of each service's `/ready` through the ALB. */
  readonly readinessChecks = {} as Record<ServiceName, route53.HealthCheck>;
  /** `api.<domain>`: the ALB's public name (CloudFront and API Gateway origin, JWKS URL). */
  readonly apiHostname: string;
  /** `https://<domain>`: the CloudFront distribution's public name. */
  readonly cdnBaseUrl: string;
  /** The shoppers' Cognito user pool, whose ID tokens the user service trades for the shop's own. */
  readonly shopperPool = {} as { issuer: string; clientId: string };

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { cfg, vpc, securityGroups, logsKey, secretsKey } = props;
    const env = cfg.envName;
    const domain = cfg.domainName;
    this.apiHostname = `api.${domain}`;
    this.cdnBaseUrl = `https://${domain}`;

    const zone = route53.PublicHostedZone.fromPublicHostedZoneAttributes(this, 'Zone', {
      hostedZoneId: cfg.hostedZoneId,
      zoneName: domain,
    });
    // The shop's emails (password resets, order updates) go out through SES from this domain,
    // verified and DKIM-signed through the zone's records.
    new ses.EmailIdentity(this, 'MailIdentity', {
      identity: ses.Identity.publicHostedZone(zone),
      mailFromDomain: `mail.${domain}`,
    });
    // One certificate naming each host (no wildcard) for the site, the ALB and the API Gateway
    // domain (all in us-east-1, where CloudFront requires its certificate), validated through the zone.
    const certificate = new acm.Certificate(this, 'Certificate', {
      domainName: domain,
      subjectAlternativeNames: [`www.${domain}`, `api.${domain}`, `gateway.${domain}`],
      validation: acm.CertificateValidation.fromDns(zone),
    });

    // ------------------------------------------------------------------ S3
    const logsBucket = new s3.Bucket(this, 'LogsBucket', {
      bucketName: `shop-${env}-logs-${cfg.account}`,
      // ALB access logs and S3 server access logs support only SSE-S3 on the target bucket.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // CloudFront standard logs are delivered with an ACL grant.
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      enforceSSL: true,
      versioned: true,
      lifecycleRules: [{ id: 'expire-logs', expiration: cdk.Duration.days(400), noncurrentVersionExpiration: cdk.Duration.days(30) }],
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    skipCheckov(logsBucket, 'CKV_AWS_18', 'This is the access-log target bucket; logging it into itself would loop');

    this.contentKey = dataKey(this, 'ContentKey', cfg, 'content');
    // CloudFront (origin access control) decrypts objects it is allowed to read by the bucket
    // policy below. The key policy cannot name the distribution (the distribution depends on the
    // buckets, which depend on the key), so it names the account's distributions; the bucket
    // policy is the exact gate.
    this.contentKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudFrontOriginAccessControlDecrypt',
        principals: [new iam.ServicePrincipal('cloudfront.amazonaws.com')],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: { ArnLike: { 'AWS:SourceArn': `arn:aws:cloudfront::${cfg.account}:distribution/*` } },
      }),
    );
    const contentBucket = (id: string, name: string, extra: Partial<s3.BucketProps> = {}) =>
      new s3.Bucket(this, id, {
        bucketName: `shop-${env}-${name}-${cfg.account}`,
        encryption: s3.BucketEncryption.KMS,
        encryptionKey: this.contentKey,
        bucketKeyEnabled: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforceSSL: true,
        versioned: true,
        serverAccessLogsBucket: logsBucket,
        serverAccessLogsPrefix: `s3/${name}/`,
        lifecycleRules: [{ id: 'old-versions', noncurrentVersionExpiration: cdk.Duration.days(90) }],
        removalPolicy: cdk.RemovalPolicy.RETAIN,
        ...extra,
      });
    this.assetsBucket = contentBucket('AssetsBucket', 'assets', {
      // An upload waits under uploads/ (never served) until the product service has checked it and
      // published it under images/; one never completed goes after a day.
      lifecycleRules: [
        { id: 'old-versions', noncurrentVersionExpiration: cdk.Duration.days(90) },
        { id: 'expire-staged-uploads', prefix: 'uploads/', expiration: cdk.Duration.days(1), noncurrentVersionExpiration: cdk.Duration.days(1) },
      ],
      // Admins upload product images straight from the browser with presigned PUT URLs.
      cors: [
        {
          allowedMethods: [s3.HttpMethods.PUT, s3.HttpMethods.GET],
          allowedOrigins: [`https://${domain}`],
          allowedHeaders: ['*'],
          maxAge: 3000,
        },
      ],
    });

    // ------------------------------------------------------------------ ALB
    const albSg = ec2.SecurityGroup.fromSecurityGroupId(this, 'AlbSgRef', securityGroups.alb.securityGroupId, {
      mutable: false,
      allowAllOutbound: false,
    });
    this.alb = new elbv2.ApplicationLoadBalancer(this, 'Alb', {
      loadBalancerName: `shop-${env}`,
      vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroup: albSg,
      dropInvalidHeaderFields: true,
      deletionProtection: true,
      http2Enabled: true,
      idleTimeout: cdk.Duration.seconds(60),
      desyncMitigationMode: elbv2.DesyncMitigationMode.DEFENSIVE,
    });
    this.alb.logAccessLogs(logsBucket, 'alb');
    // Everything no API rule takes goes to the web tier: the storefront's pages, its `/static/`
    // files, and for any other path its not-found answer (a page for browsers, a problem for API
    // clients). Its target group is made here, with the listener that names it; the Services stack
    // attaches the web tier's tasks to it.
    const unrouted = SERVICES.filter((spec) => spec.listenerDefault);
    if (unrouted.length !== 1) {
      throw new Error(`exactly one service answers the ALB listener's default action, not ${unrouted.length}`);
    }
    this.listenerDefaultTargets = serviceTargetGroup(this, `${title(unrouted[0].name)}Targets`, cfg, unrouted[0].name, vpc);
    this.httpsListener = this.alb.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [certificate],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: false,
      defaultAction: elbv2.ListenerAction.forward([this.listenerDefaultTargets]),
    });
    this.alb.addListener('Http', {
      port: 80,
      protocol: elbv2.ApplicationProtocol.HTTP,
      open: false,
      defaultAction: elbv2.ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
    });

    // ------------------------------------------------------------------ WAF
    const albAcl = this.webAcl('AlbAcl', cfg, 'alb', logsKey);
    const cloudFrontAcl = this.webAcl('CloudFrontAcl', cfg, 'cloudfront', logsKey);
    new wafv2.CfnWebACLAssociation(this, 'AlbWaf', {
      resourceArn: this.alb.loadBalancerArn,
      webAclArn: albAcl.attrArn,
    });

    // ------------------------------------------------------------------ CloudFront
    // Strips the `/api` prefix (the services serve `/v1/...`) and refuses the admin API, which is
    // reachable only through API Gateway with IAM.
    const apiRewrite = new cloudfront.Function(this, 'ApiRewrite', {
      functionName: `shop-${env}-api-rewrite`,
      comment: 'Strip /api before the ALB; refuse /api/admin (API Gateway + IAM only)',
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      code: cloudfront.FunctionCode.fromInline(`
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri === '/api/admin' || uri.indexOf('/api/admin/') === 0) {
    return { statusCode: 403, statusDescription: 'Forbidden' };
  }
  request.uri = uri.substring(4) || '/';
  return request;
}`),
    });
    const oac = new cloudfront.S3OriginAccessControl(this, 'OriginAccessControl', {
      originAccessControlName: `shop-${env}-s3`,
      signing: cloudfront.Signing.SIGV4_ALWAYS,
    });
    const assetsOrigin = new OacBucketOrigin(this.assetsBucket, oac);
    this.edgeToken = new secretsmanager.Secret(this, 'EdgeToken', {
      secretName: `shop/${env}/edge-token`,
      description: `Value of ${EDGE_HEADER}: CloudFront and API Gateway send it on every request; the services trust X-Forwarded-For past the ALB only with it`,
      encryptionKey: secretsKey,
      generateSecretString: { excludePunctuation: true, passwordLength: 48 },
    });
    const albOrigin = new origins.HttpOrigin(this.apiHostname, {
      protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      readTimeout: cdk.Duration.seconds(30),
      customHeaders: { [EDGE_HEADER]: this.edgeToken.secretValue.unsafeUnwrap() },
    });
    const yearCache = new cloudfront.CachePolicy(this, 'YearCache', {
      cachePolicyName: `shop-${env}-1y`,
      comment: 'Content-hashed static files and images: one year',
      defaultTtl: cdk.Duration.days(365),
      maxTtl: cdk.Duration.days(365),
      minTtl: cdk.Duration.seconds(0),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    // The storefront's pages are kept as long as the web tier's Cache-Control allows: a page that
    // is the same for everyone says `public, max-age=0, s-maxage=60` (a minute here, browsers
    // revalidate with its ETag), a shopper's own page `private, no-store` (never kept), and an
    // answer without Cache-Control is not kept either (default TTL 0). The key is the path and
    // every query string (listing filters, sort, cursor, search).
    // Cookies reach the web tier (origin request policy below) but are not part of the key: the
    // pages that depend on one (the cart and checkout on `shop_cart` and `shop_csrf`, later a
    // signed-in shopper's) are `private, no-store`, so the cache only ever holds pages that are
    // the same for every visitor, and keying on cookies would split it per visitor (any analytics
    // cookie) for no gain. A page that reads or sets a cookie must therefore never be public.
    // Request headers are not part of the key either: a page is HTML whatever the request accepts,
    // and the one answer that depends on Accept, not found, is never kept (errorResponses below).
    const pageCache = new cloudfront.CachePolicy(this, 'PageCache', {
      cachePolicyName: `shop-${env}-pages`,
      comment: 'Storefront pages: as long as their Cache-Control allows, keyed on the query string',
      defaultTtl: cdk.Duration.seconds(0),
      maxTtl: cdk.Duration.days(1),
      minTtl: cdk.Duration.seconds(0),
      queryStringBehavior: cloudfront.CacheQueryStringBehavior.all(),
      headerBehavior: cloudfront.CacheHeaderBehavior.none(),
      cookieBehavior: cloudfront.CacheCookieBehavior.none(),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    // What a page request carries to the web tier: every query string and cookie; Accept (an
    // unknown path is the not-found page for a browser, a problem for an API client); and what its
    // forms' check of a post's origin reads: Sec-Fetch-Site, else Origin against the viewer's Host
    // (`<domain>` or `www.<domain>`, both on the ALB's certificate, so CloudFront may send it).
    const pageRequest = new cloudfront.OriginRequestPolicy(this, 'PageRequest', {
      originRequestPolicyName: `shop-${env}-pages`,
      comment: 'Storefront pages: query strings, cookies, Accept and the origin headers to the web tier',
      queryStringBehavior: cloudfront.OriginRequestQueryStringBehavior.all(),
      cookieBehavior: cloudfront.OriginRequestCookieBehavior.all(),
      headerBehavior: cloudfront.OriginRequestHeaderBehavior.allowList('Accept', 'Host', 'Origin', 'Sec-Fetch-Site'),
    });
    // Security headers (nosniff, HSTS, frame denial, referrer) and a Content-Security-Policy on
    // everything but the API: the pages keep the web tier's own policy (the checkout's admits
    // Stripe's script, frames and API, no other page's does) and get PAGE_CSP only where it sent
    // none, `/static/*` one that allows nothing but this origin, and images are sandboxed besides,
    // never a page that can run anything.
    const securityHeaders = (id: string, csp: string, comment: string, overrideCsp = true) =>
      new cloudfront.ResponseHeadersPolicy(this, id, {
        responseHeadersPolicyName: `shop-${env}-${id.toLowerCase()}`,
        comment,
        securityHeadersBehavior: {
          contentTypeOptions: { override: true },
          contentSecurityPolicy: { contentSecurityPolicy: csp, override: overrideCsp },
          frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
          referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override: true },
          strictTransportSecurity: { accessControlMaxAge: cdk.Duration.days(365), includeSubdomains: true, override: true },
        },
      });
    const pageHeaders = securityHeaders(
      'PageHeaders',
      PAGE_CSP,
      "Security headers for the storefront pages, and a Content-Security-Policy where the web tier sent none",
      false,
    );
    const staticHeaders = securityHeaders('StaticHeaders', STATIC_CSP, 'Security headers and a Content-Security-Policy for /static/*');
    const imageHeaders = securityHeaders('ImageHeaders', IMAGE_CSP, 'Security headers and a Content-Security-Policy for /images/*');
    // Files: GET and HEAD only.
    const readOnly = (
      origin: cloudfront.IOrigin,
      cachePolicy: cloudfront.ICachePolicy,
      responseHeadersPolicy: cloudfront.IResponseHeadersPolicy,
    ): cloudfront.BehaviorOptions => ({
      origin,
      cachePolicy,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
      responseHeadersPolicy,
      compress: true,
    });
    this.distribution = new cloudfront.Distribution(this, 'Cdn', {
      comment: `shop ${env}`,
      domainNames: [domain, `www.${domain}`],
      certificate,
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_ALL,
      enableIpv6: true,
      webAclId: cloudFrontAcl.attrArn,
      enableLogging: true,
      logBucket: logsBucket,
      logFilePrefix: 'cloudfront/',
      // The storefront: the web tier's pages, through the ALB (whose default action it is). Every
      // method, for its forms' posts (cart, checkout); CloudFront keeps only GET and HEAD answers.
      defaultBehavior: {
        origin: albOrigin,
        cachePolicy: pageCache,
        originRequestPolicy: pageRequest,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        responseHeadersPolicy: pageHeaders,
        compress: true,
      },
      additionalBehaviors: {
        // The web tier serves its own static files under content-hashed names
        // (`Cache-Control: public, max-age=31536000, immutable`): a year here too.
        '/static/*': readOnly(albOrigin, yearCache, staticHeaders),
        '/images/*': readOnly(assetsOrigin, yearCache, imageHeaders),
        '/api/*': {
          origin: albOrigin,
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
          cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
          originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
          responseHeadersPolicy: cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
          functionAssociations: [{ function: apiRewrite, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST }],
        },
      },
      // A not-found answer is never kept: for one path the web tier answers a browser with its
      // page and an API client with a problem (by Accept, which is not in the cache key).
      errorResponses: [{ httpStatus: 404, ttl: cdk.Duration.seconds(0) }],
    });
    // CloudFront may read exactly what it serves: `images/` of the assets bucket (never `labels/`).
    const cloudFrontRead = (bucket: s3.Bucket, prefix: string) =>
      bucket.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'CloudFrontOriginAccessControlRead',
          principals: [new iam.ServicePrincipal('cloudfront.amazonaws.com')],
          actions: ['s3:GetObject'],
          resources: [bucket.arnForObjects(`${prefix}*`)],
          conditions: { StringEquals: { 'AWS:SourceArn': this.distribution.distributionArn } },
        }),
      );
    cloudFrontRead(this.assetsBucket, 'images/');

    // ------------------------------------------------------------------ API Gateway
    this.gatewayToken = new secretsmanager.Secret(this, 'GatewayToken', {
      secretName: `shop/${env}/gateway-token`,
      description: `Value of ${GATEWAY_HEADER}: API Gateway sends it on admin routes, the ALB requires it for /admin/*`,
      encryptionKey: secretsKey,
      generateSecretString: { excludePunctuation: true, passwordLength: 48 },
    });
    this.api = this.makeApi(cfg, certificate, zone, logsKey, this.webAcl('GatewayAcl', cfg, 'gateway', logsKey));

    // ------------------------------------------------------------------ Route 53
    const cdnTarget = route53.RecordTarget.fromAlias(new targets.CloudFrontTarget(this.distribution));
    for (const [id, recordName] of [
      ['Site', undefined],
      ['Www', 'www'],
    ] as const) {
      new route53.ARecord(this, `${id}A`, { zone, recordName, target: cdnTarget });
      new route53.AaaaRecord(this, `${id}Aaaa`, { zone, recordName, target: cdnTarget });
    }

    // Health checks: each service's readiness (`/ready`: its database, cache, queues answer) through
    // the primary ALB, addressed by the ALB's own DNS name so they never follow the failover.
    // The user and payment checks are the database connectivity checks; the web tier's guards the
    // storefront, which CloudFront reaches through `api.<domain>` as well.
    for (const spec of SERVICES) {
      this.readinessChecks[spec.name] = new route53.HealthCheck(this, `${title(spec.name)}Ready`, {
        type: route53.HealthCheckType.HTTPS,
        fqdn: this.alb.loadBalancerDnsName,
        port: 443,
        resourcePath: `/_ready/${spec.name}`,
        enableSNI: true,
        requestInterval: cdk.Duration.seconds(30),
        failureThreshold: 3,
        measureLatency: true,
      });
      cdk.Tags.of(this.readinessChecks[spec.name]).add('Name', `shop-${env}-${spec.name}-ready`);
    }
    const primaryHealthy = new route53.HealthCheck(this, 'PrimaryRegionHealthy', {
      type: route53.HealthCheckType.CALCULATED,
      childHealthChecks: Object.values(this.readinessChecks),
      healthThreshold: SERVICES.length,
    });
    cdk.Tags.of(primaryHealthy).add('Name', `shop-${env}-primary-region`);

    new route53.ARecord(this, 'ApiPrimary', {
      zone,
      recordName: 'api',
      target: route53.RecordTarget.fromAlias(new targets.LoadBalancerTarget(this.alb, { evaluateTargetHealth: true })),
      setIdentifier: `${cfg.region}-primary`,
      failover: route53.Failover.PRIMARY,
      healthCheck: primaryHealthy,
    });
    new route53.ARecord(this, 'ApiSecondary', {
      zone,
      recordName: 'api',
      target: route53.RecordTarget.fromAlias({
        bind: () => ({
          dnsName: `dualstack.${cfg.dr.albDnsName}`,
          hostedZoneId: cfg.dr.albCanonicalHostedZoneId,
          evaluateTargetHealth: true,
        }),
      }),
      setIdentifier: `${cfg.dr.region}-secondary`,
      failover: route53.Failover.SECONDARY,
    });

    new cdk.CfnOutput(this, 'CdnDomain', { value: this.distribution.distributionDomainName });
    new cdk.CfnOutput(this, 'AlbDns', { value: this.alb.loadBalancerDnsName });
    new cdk.CfnOutput(this, 'AssetsBucketName', { value: this.assetsBucket.bucketName });
  }

  /**
   * The REST API: stage `prod`, 5,000 requests/s, regional, reachable only at `gateway.<domain>`.
   * Every route proxies to the ALB (`https://api.<domain>`), the `/api` prefix dropped:
   * - public routes (catalog, sign-in, guest carts, JWKS, the Stripe webhook): no gateway auth,
   *   the services check the shop's access token themselves;
   * - shopper routes (`/v1/cart`, `/v1/orders`, `/v1/users`, `/v1/payments`): Cognito user pool
   *   authorizer on `Authorization`; the shop token travels in `X-Shop-Authorization` and is handed
   *   to the service as `Authorization`;
   * - admin routes (`/admin/*`): IAM (SigV4); the shop token likewise in `X-Shop-Authorization`,
   *   plus the gateway token the ALB requires on `/admin/*`.
   * Product and category detail (GET) answers are cached 5 minutes in the stage cache.
   */
  private makeApi(
    cfg: EnvConfig,
    certificate: acm.ICertificate,
    zone: route53.IHostedZone,
    logsKey: kms.IKey,
    acl: wafv2.CfnWebACL,
  ): apigw.RestApi {
    const env = cfg.envName;
    const accessLogs = logGroup(this, 'ApiAccessLogs', `/shop/${env}/api-gateway/access`, logsKey);
    const cached = { cachingEnabled: true, cacheTtl: cdk.Duration.minutes(5), cacheDataEncrypted: true };
    const api = new apigw.RestApi(this, 'Api', {
      restApiName: `shop-${env}`,
      description: `shop ${env}: mobile and partner API in front of the ALB`,
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      disableExecuteApiEndpoint: true,
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: cdk.RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: 'prod',
        throttlingRateLimit: 5000,
        throttlingBurstLimit: 5000,
        tracingEnabled: true,
        metricsEnabled: true,
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        cacheClusterEnabled: true,
        cacheClusterSize: '0.5',
        cacheDataEncrypted: true,
        methodOptions: {
          '/api/v1/products/{proxy+}/GET': cached,
          '/api/v1/categories/{proxy+}/GET': cached,
        },
      },
    });

    const shopperPool = new cognito.UserPool(this, 'Shoppers', {
      userPoolName: `shop-${env}-shoppers`,
      selfSignUpEnabled: true,
      signInAliases: { email: true },
      autoVerify: { email: true },
      passwordPolicy: { minLength: 12, requireDigits: true, requireLowercase: true, requireUppercase: true },
      mfa: cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      deletionProtection: true,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    const mobileClient = shopperPool.addClient('MobileClient', {
      userPoolClientName: 'shop-mobile',
      generateSecret: false,
      authFlows: { userSrp: true },
      preventUserExistenceErrors: true,
    });
    const shopperAuthorizer = new apigw.CognitoUserPoolsAuthorizer(this, 'ShopperAuthorizer', {
      authorizerName: 'shoppers',
      cognitoUserPools: [shopperPool],
      identitySource: apigw.IdentitySource.header('Authorization'),
      resultsCacheTtl: cdk.Duration.minutes(5),
    });

    const origin = `https://${this.apiHostname}`;
    type Auth = 'public' | 'shopper' | 'admin';
    const route = (resource: apigw.IResource, backendPath: string, auth: Auth, httpMethod = 'ANY', cacheByPath = false) => {
      const greedy = backendPath.includes('{proxy}');
      // Every route proves it came through the gateway (see EDGE_HEADER).
      const integrationParams: Record<string, string> = {
        [`integration.request.header.${EDGE_HEADER}`]: `'${this.edgeToken.secretValue.unsafeUnwrap()}'`,
      };
      const methodParams: Record<string, boolean> = {};
      if (greedy) {
        integrationParams['integration.request.path.proxy'] = 'method.request.path.proxy';
        methodParams['method.request.path.proxy'] = true;
      }
      if (auth !== 'public') {
        integrationParams['integration.request.header.Authorization'] = `method.request.header.${SHOP_TOKEN_HEADER}`;
        methodParams[`method.request.header.${SHOP_TOKEN_HEADER}`] = false;
      }
      if (auth === 'admin') {
        integrationParams[`integration.request.header.${GATEWAY_HEADER}`] = `'${this.gatewayToken.secretValue.unsafeUnwrap()}'`;
      }
      const integration = new apigw.HttpIntegration(`${origin}${backendPath}`, {
        httpMethod,
        proxy: true,
        options: {
          requestParameters: integrationParams,
          cacheKeyParameters: cacheByPath ? ['method.request.path.proxy'] : undefined,
          timeout: cdk.Duration.seconds(29),
        },
      });
      const method = resource.addMethod(httpMethod, integration, {
        requestParameters: methodParams,
        ...(auth === 'shopper'
          ? { authorizationType: apigw.AuthorizationType.COGNITO, authorizer: shopperAuthorizer }
          : auth === 'admin'
            ? { authorizationType: apigw.AuthorizationType.IAM }
            : { authorizationType: apigw.AuthorizationType.NONE }),
      });
      if (auth === 'public') {
        skipCheckov(
          method,
          'CKV_AWS_59',
          'Public shopper route (catalog, sign-in, guest carts, JWKS, Stripe webhook): no gateway credential by design; the services verify tokens',
        );
      }
      return method;
    };

    const root = api.root.addResource('api');
    route(root.addResource('{proxy+}'), '/{proxy}', 'public');
    const v1 = root.addResource('v1');
    route(v1.addResource('{proxy+}'), '/v1/{proxy}', 'public');
    for (const name of ['cart', 'orders', 'users', 'payments']) {
      const res = v1.addResource(name);
      route(res, `/v1/${name}`, 'shopper');
      route(res.addResource('{proxy+}'), `/v1/${name}/{proxy}`, 'shopper');
    }
    // Stripe calls its webhook without a shopper token; Stripe-Signature is checked by the service.
    const stripe = v1.getResource('payments')!.addResource('webhooks').addResource('stripe');
    route(stripe, '/v1/payments/webhooks/stripe', 'public', 'POST');
    for (const name of ['products', 'categories']) {
      const res = v1.addResource(name);
      route(res, `/v1/${name}`, 'public'); // search and lists: not cached (query strings)
      route(res.addResource('{proxy+}'), `/v1/${name}/{proxy}`, 'public', 'GET', true);
    }
    route(root.addResource('admin').addResource('{proxy+}'), '/admin/{proxy}', 'admin');

    new wafv2.CfnWebACLAssociation(this, 'ApiWaf', {
      resourceArn: api.deploymentStage.stageArn,
      webAclArn: acl.attrArn,
    });

    const gatewayDomain = new apigw.DomainName(this, 'GatewayDomain', {
      domainName: `gateway.${cfg.domainName}`,
      certificate,
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
      mapping: api,
    });
    new route53.ARecord(this, 'GatewayA', {
      zone,
      recordName: 'gateway',
      target: route53.RecordTarget.fromAlias(new targets.ApiGatewayDomain(gatewayDomain)),
    });
    new cdk.CfnOutput(this, 'ShopperUserPoolId', { value: shopperPool.userPoolId });
    this.shopperPool.issuer = `https://cognito-idp.${cfg.region}.amazonaws.com/${shopperPool.userPoolId}`;
    this.shopperPool.clientId = mobileClient.userPoolClientId;
    return api;
  }

  /**
   * A WAF web ACL: AWS managed rules (common, known bad inputs incl. Log4j, SQL injection, IP
   * reputation) and a per-client rate limit on the API, with its logs in CloudWatch Logs.
   */
  private webAcl(id: string, cfg: EnvConfig, kind: 'cloudfront' | 'alb' | 'gateway', logsKey: kms.IKey): wafv2.CfnWebACL {
    const scope = kind === 'cloudfront' ? 'CLOUDFRONT' : 'REGIONAL';
    const name = `shop-${cfg.envName}-${kind}`;
    const visibility = (metric: string) => ({
      cloudWatchMetricsEnabled: true,
      sampledRequestsEnabled: true,
      metricName: `${name}-${metric}`,
    });
    const managed = (ruleGroup: string, priority: number, countOnly: string[] = []): wafv2.CfnWebACL.RuleProperty => ({
      name: ruleGroup,
      priority,
      overrideAction: { none: {} },
      statement: {
        managedRuleGroupStatement: {
          vendorName: 'AWS',
          name: ruleGroup,
          ruleActionOverrides: countOnly.length ? countOnly.map((rule) => ({ name: rule, actionToUse: { count: {} } })) : undefined,
        },
      },
      visibilityConfig: visibility(ruleGroup),
    });
    // Only the API is rate limited (static files are cheap), per client. CloudFront and API Gateway
    // see the client's own connection, so they key on it. The ALB sees CloudFront and API Gateway
    // (each already limiting per client) and clients calling `api.<domain>` directly: those without
    // `X-Forwarded-For` are keyed on their connection, the others on its first address.
    const onApi: wafv2.CfnWebACL.StatementProperty = {
      byteMatchStatement: {
        fieldToMatch: { uriPath: {} },
        positionalConstraint: 'STARTS_WITH',
        searchString: '/api/',
        textTransformations: [{ priority: 0, type: 'NONE' }],
      },
    };
    const forwarded: wafv2.CfnWebACL.StatementProperty = {
      sizeConstraintStatement: {
        fieldToMatch: { singleHeader: { Name: 'x-forwarded-for' } },
        comparisonOperator: 'GT',
        size: 0,
        textTransformations: [{ priority: 0, type: 'NONE' }],
      },
    };
    const limit = cfg.wafApiRateLimitPer5Min;
    const rates: Array<[string, wafv2.CfnWebACL.RateBasedStatementProperty]> =
      kind === 'cloudfront'
        ? [['api-rate-limit', { limit, aggregateKeyType: 'IP', scopeDownStatement: onApi }]]
        : kind === 'gateway'
          ? [['api-rate-limit', { limit, aggregateKeyType: 'IP' }]]
          : [
              ['direct-rate-limit', { limit, aggregateKeyType: 'IP', scopeDownStatement: { notStatement: { statement: forwarded } } }],
              [
                'forwarded-rate-limit',
                {
                  limit,
                  aggregateKeyType: 'FORWARDED_IP',
                  // A header that is not an address counts too (all such requests together).
                  forwardedIpConfig: { headerName: 'X-Forwarded-For', fallbackBehavior: 'MATCH' },
                },
              ],
            ];
    const acl = new wafv2.CfnWebACL(this, id, {
      name,
      scope,
      defaultAction: { allow: {} },
      visibilityConfig: visibility('acl'),
      rules: [
        ...rates.map(([rule, statement], i): wafv2.CfnWebACL.RuleProperty => ({
          name: rule,
          priority: i === 0 ? 0 : 10 + i,
          action: { block: {} },
          statement: { rateBasedStatement: statement },
          visibilityConfig: visibility(rule === 'api-rate-limit' ? 'rate' : rule),
        })),
        managed('AWSManagedRulesAmazonIpReputationList', 1),
        // Large bodies are legitimate on the regional side (admin NDJSON imports through the gateway).
        managed('AWSManagedRulesCommonRuleSet', 2, scope === 'REGIONAL' ? ['SizeRestrictions_BODY'] : []),
        managed('AWSManagedRulesKnownBadInputsRuleSet', 3),
        managed('AWSManagedRulesSQLiRuleSet', 4),
      ],
    });
    const logs = logGroup(this, `${id}Logs`, `aws-waf-logs-${name}`, logsKey);
    new wafv2.CfnLoggingConfiguration(this, `${id}Logging`, {
      resourceArn: acl.attrArn,
      logDestinationConfigs: [
        cdk.Stack.of(this).formatArn({
          service: 'logs',
          resource: 'log-group',
          resourceName: logs.logGroupName,
          arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
    });
    return acl;
  }
}
