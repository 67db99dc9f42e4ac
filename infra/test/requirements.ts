/**
 * Checks the synthesized templates (cdk.out/<env>) against the numbers of the reference design and
 * the facts of the platform, so that neither a refactor nor an edit of lib/config.ts can quietly
 * change one. Every expected value is written here, literally: nothing is imported from lib/ (a
 * value read back from the app's own configuration passes whatever it is changed to). Where the
 * design states a number, the check says "design"; where it is silent, the value the app has today
 * is pinned and the check says "design silent", so that changing it means changing this file too.
 * Run by check.sh after synth:
 *   npx ts-node --transpile-only test/requirements.ts staging prod
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

type Resource = { Type: string; Properties?: Record<string, any>; Metadata?: Record<string, any>; Stack: string; Id: string };

type EnvName = 'staging' | 'prod';

/**
 * What differs between the environments. The design states none of these: each is pinned. Both
 * environments otherwise get the same, full-size shape.
 */
const ENVIRONMENTS: Record<EnvName, {
  account: string;
  domain: string;
  vpcCidr: string;
  natGateways: number;
  costCenter: string;
  billingAlarmUsd: number;
  /** The orders-dropped alarm: in prod no orders at all is itself a drop; staging is often idle. */
  ordersDroppedMissingData: string;
}> = {
  staging: {
    account: '111111111111',
    domain: 'staging.shop.example.com',
    vpcCidr: '10.20.0.0/16',
    natGateways: 1,
    costCenter: 'shop-staging',
    billingAlarmUsd: 5000,
    ordersDroppedMissingData: 'notBreaching',
  },
  prod: {
    account: '222222222222',
    domain: 'shop.example.com',
    vpcCidr: '10.10.0.0/16',
    natGateways: 3,
    costCenter: 'shop-prod',
    billingAlarmUsd: 25000,
    ordersDroppedMissingData: 'breaching',
  },
};

/**
 * The six services, the same in both environments: Fargate task size (CPU units, MiB as the
 * template writes them), task counts, the scheduled Black Friday floor, the queue each consumes
 * (none for the web tier, which takes no part in the events).
 * Design: User Service CPU 512, Memory 1 GB, 2-10 tasks; Order Service CPU 1024, Memory 2 GB, 2-20
 * tasks; the web tier ("Web Application Hosting") CPU 256, Memory 512 MB, auto scaling on CPU and
 * ALB requests; desired count 2, the minimum for HA. The design runs the product service (1 GB)
 * and the payment service on Lambda and gives the inventory service no size: their ECS CPU and task
 * counts are pinned (design silent), as is the web tier's maximum. The Black Friday floor (design:
 * "scale up before known traffic peaks", no number) is pinned at half the maximum.
 */
const SERVICES: Record<string, { cpu: string; memory: string; min: number; max: number; peakMin: number; queue?: string }> = {
  user: { cpu: '512', memory: '1024', min: 2, max: 10, peakMin: 5, queue: 'shop-user-mail' },
  product: { cpu: '512', memory: '1024', min: 2, max: 20, peakMin: 10, queue: 'shop-product-indexer' },
  order: { cpu: '1024', memory: '2048', min: 2, max: 20, peakMin: 10, queue: 'shop-order-saga' },
  payment: { cpu: '512', memory: '1024', min: 2, max: 10, peakMin: 5, queue: 'shop-payment-commands' },
  inventory: { cpu: '512', memory: '1024', min: 2, max: 10, peakMin: 5, queue: 'shop-inventory-commands' },
  web: { cpu: '256', memory: '512', min: 2, max: 20, peakMin: 10 },
};

/**
 * The DynamoDB tables, exactly as the services' adapters use them: owner, key schema and GSIs
 * (`name:type` of the partition and sort key). Design: catalog partition key CategoryID, sort key
 * ProductID, GSIs on brand and price range; orders partition key CustomerID, sort key OrderDate
 * (here `OrderKey` = `OrderDate#OrderID`, which sorts by date and keeps two orders of one instant
 * apart), GSI on OrderStatus.
 */
const TABLES: Record<string, { owner: string; keys: string; gsis?: Record<string, string> }> = {
  'shop-products': {
    owner: 'product',
    keys: 'CategoryID:S ProductID:S',
    gsis: { 'by-brand': 'Brand:S ProductID:S', 'by-price': 'CategoryCurrency:S Price:N', 'by-id': 'IdShard:N ProductID:S' },
  },
  'shop-product-ids': { owner: 'product', keys: 'ProductID:S' },
  'shop-product-stock': { owner: 'product', keys: 'SKU:S' },
  'shop-categories': { owner: 'product', keys: 'CategoryID:S' },
  'shop-outbox': { owner: 'product', keys: 'Service:S Seq:N' },
  'shop-inventory-stock': { owner: 'inventory', keys: 'SKU:S' },
  'shop-inventory-reservations': { owner: 'inventory', keys: 'OrderID:S', gsis: { 'held-by-expiry': 'HeldShard:N ExpiresAt:N' } },
  'shop-inventory-ledger': { owner: 'inventory', keys: 'SKU:S Seq:N' },
  'shop-inventory-outbox': { owner: 'inventory', keys: 'Service:S Seq:N' },
  'shop-orders': {
    owner: 'order',
    keys: 'CustomerID:S OrderKey:S',
    gsis: { 'by-status-shard': 'StatusShard:S OrderID:S', 'by-deadline': 'DeadlineShard:N Deadline:N' },
  },
  'shop-order-keys': { owner: 'order', keys: 'Key:S' },
  'shop-carts': { owner: 'order', keys: 'CartID:S', gsis: { 'idle-carts': 'IdleShard:N UpdatedAt:N' } },
  'shop-order-outbox': { owner: 'order', keys: 'Service:S Seq:N' },
  'shop-order-settings': { owner: 'order', keys: 'Kind:S Id:S' },
};

/** Resource types that carry tags: each must carry the cost allocation tags. */
const TAGGED_TYPES = [
  'AWS::ApiGateway::DomainName',
  'AWS::ApiGateway::RestApi',
  'AWS::ApiGateway::Stage',
  'AWS::ApplicationAutoScaling::ScalableTarget',
  'AWS::CertificateManager::Certificate',
  'AWS::CloudFront::Distribution',
  'AWS::CloudFront::Function',
  'AWS::CloudWatch::Alarm',
  'AWS::CloudWatch::CompositeAlarm',
  'AWS::CloudWatch::Dashboard',
  'AWS::Cognito::UserPool',
  'AWS::DynamoDB::Table',
  'AWS::EC2::EIP',
  'AWS::EC2::FlowLog',
  'AWS::EC2::InternetGateway',
  'AWS::EC2::NatGateway',
  'AWS::EC2::NetworkAcl',
  'AWS::EC2::RouteTable',
  'AWS::EC2::SecurityGroup',
  'AWS::EC2::Subnet',
  'AWS::EC2::VPC',
  'AWS::EC2::VPCEndpoint',
  'AWS::ECS::Cluster',
  'AWS::ECS::Service',
  'AWS::ECS::TaskDefinition',
  'AWS::ElastiCache::ParameterGroup',
  'AWS::ElastiCache::ReplicationGroup',
  'AWS::ElastiCache::SubnetGroup',
  'AWS::ElasticLoadBalancingV2::Listener',
  'AWS::ElasticLoadBalancingV2::ListenerRule',
  'AWS::ElasticLoadBalancingV2::LoadBalancer',
  'AWS::ElasticLoadBalancingV2::TargetGroup',
  'AWS::IAM::Role',
  'AWS::KMS::Key',
  'AWS::Logs::LogGroup',
  'AWS::OpenSearchService::Domain',
  'AWS::RDS::DBInstance',
  'AWS::RDS::DBParameterGroup',
  'AWS::RDS::DBSubnetGroup',
  'AWS::Route53::HealthCheck',
  'AWS::S3::Bucket',
  'AWS::SES::EmailIdentity',
  'AWS::SNS::Topic',
  'AWS::SQS::Queue',
  'AWS::SSM::Parameter',
  'AWS::SecretsManager::Secret',
  'AWS::ServiceDiscovery::PrivateDnsNamespace',
  'AWS::ServiceDiscovery::Service',
  'AWS::WAFv2::WebACL',
];

/** AWS's managed CloudFront policies (fixed ids). */
const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
const ALL_VIEWER_EXCEPT_HOST_HEADER = 'b689b0a8-53d0-40ab-baf2-68738e2966ac';

const ONE_YEAR_S = 365 * 86400;

function load(env: string): Resource[] {
  const dir = path.join(__dirname, '..', 'cdk.out', env);
  const all: Resource[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.template.json'))) {
    const template = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    for (const [id, r] of Object.entries(template.Resources ?? {}) as [string, Resource][]) {
      all.push({ ...r, Stack: file.replace(/\.template\.json$/, ''), Id: id });
    }
  }
  return all;
}

/** Tags of a resource as a map, whichever property and shape its type uses. */
function tagsOf(r: Resource): Record<string, unknown> {
  const p = r.Properties ?? {};
  const raw = p.Tags ?? p.HealthCheckTags ?? p.UserPoolTags;
  if (!raw) return {};
  return Array.isArray(raw) ? Object.fromEntries(raw.map((t: any) => [t.Key, t.Value])) : raw;
}

const cap = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);
const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v, (_k, x) => (x === undefined ? '(unset)' : x)));

function check(env: EnvName): number {
  const E = ENVIRONMENTS[env];
  const all = load(env);
  const of = (type: string) => all.filter((r) => r.Type === type);
  /** The resource a `{ Ref }` or `{ Fn::GetAtt }` in `from` names (same template). */
  const deref = (from: Resource, value: any): Resource | undefined => {
    const id = value?.Ref ?? value?.['Fn::GetAtt']?.[0];
    return all.find((r) => r.Stack === from.Stack && r.Id === id);
  };
  let n = 0;
  const ok = (cond: unknown, what: string) => {
    assert.ok(cond, `${env}: ${what}`);
    n++;
  };
  /** `actual` must deep-equal `expected`; the message names both. */
  const is = (actual: unknown, expected: unknown, what: string) => {
    assert.deepStrictEqual(actual, expected, `${env}: ${what}: expected ${show(expected)}, found ${show(actual)}`);
    n++;
  };

  // ------------------------------------------------------------------ network
  // Private subnets, NAT, gateway + interface endpoints, flow logs, the data subnets' NACL.
  is(of('AWS::EC2::VPC').map((v) => v.Properties!.CidrBlock), [E.vpcCidr], 'VPC CIDR (design silent: pinned)');
  is(of('AWS::EC2::NatGateway').length, E.natGateways, 'NAT gateways for Stripe egress (design silent: pinned, one per AZ in prod)');
  const endpoints = of('AWS::EC2::VPCEndpoint').map((e) => JSON.stringify(e.Properties?.ServiceName));
  for (const svc of ['s3', 'dynamodb', 'ecr.api', 'ecr.dkr', 'logs', 'secretsmanager', 'sqs', 'kms', 'sts']) {
    ok(endpoints.some((e) => e.includes(`.${svc}`)), `VPC endpoint for ${svc}`);
  }
  ok(of('AWS::EC2::FlowLog').length === 1 && of('AWS::EC2::FlowLog')[0].Properties!.TrafficType === 'ALL', 'VPC flow logs of all traffic');
  // Design: "Private VPC with strict NACLs", "NACLs for additional protection". The isolated data
  // subnets (RDS, Redis, OpenSearch) admit traffic from the VPC only and send traffic to it only
  // (the rule number is pinned, design silent).
  is(of('AWS::EC2::NetworkAcl').map((a) => tagsOf(a).Name), [`shop-${env}-data`], 'one custom NACL, the data subnets\'');
  const naclEntries = of('AWS::EC2::NetworkAclEntry')
    .map((e) => e.Properties!)
    .map((p) => ({ egress: p.Egress, rule: p.RuleNumber, action: p.RuleAction, protocol: p.Protocol, cidr: p.CidrBlock, ports: p.PortRange }))
    .sort((a, b) => Number(a.egress) - Number(b.egress) || a.rule - b.rule);
  is(
    naclEntries,
    [
      { egress: false, rule: 100, action: 'allow', protocol: -1, cidr: E.vpcCidr, ports: undefined },
      { egress: true, rule: 100, action: 'allow', protocol: -1, cidr: E.vpcCidr, ports: undefined },
    ],
    'data NACL rules: in from and out to the VPC only',
  );
  const naclSubnets = of('AWS::EC2::SubnetNetworkAclAssociation').map((a) => tagsOf(deref(a, a.Properties!.SubnetId)!)['aws-cdk:subnet-name']);
  is(naclSubnets, ['data', 'data', 'data'], 'data NACL on the three isolated data subnets');

  // ------------------------------------------------------------------ ECS
  // Task sizes, entry points, counts, scaling targets, scheduled scaling, rolling deployments.
  const taskDefs = of('AWS::ECS::TaskDefinition');
  const services = of('AWS::ECS::Service');
  const targets = of('AWS::ApplicationAutoScaling::ScalableTarget');
  const policies = of('AWS::ApplicationAutoScaling::ScalingPolicy');
  is(taskDefs.length, 6, 'six task definitions');
  is(services.map((s) => s.Properties!.ServiceName).sort(), Object.keys(SERVICES).map((s) => `shop-${s}`).sort(), 'the six ECS services');
  for (const [name, spec] of Object.entries(SERVICES)) {
    const td = taskDefs.find((t) => t.Properties?.Family === `shop-${env}-${name}`);
    ok(td, `task definition of ${name}`);
    is(
      { cpu: td!.Properties!.Cpu, memory: td!.Properties!.Memory },
      { cpu: spec.cpu, memory: spec.memory },
      `${name} task size (CPU units, MiB)`,
    );
    const container = td!.Properties!.ContainerDefinitions[0];
    ok(container.EntryPoint[0] === `/usr/local/bin/${name}-service`, `${name} runs its own binary`);
    ok(container.PortMappings[0].ContainerPort === 8080, `${name} on port 8080`);
    const service = services.find((s) => s.Properties?.ServiceName === `shop-${name}`)!;
    const svc = service.Properties!;
    is(svc.DesiredCount, spec.min, `${name} desired count (design: 2, the minimum for HA)`);
    is(svc.LaunchType, 'FARGATE', `${name} on Fargate (design: ECS/Fargate)`);
    // Design: "Rolling deployments: zero-downtime updates": never below the desired count.
    is(
      [svc.DeploymentConfiguration.MinimumHealthyPercent, svc.DeploymentConfiguration.MaximumPercent, svc.DeploymentConfiguration.DeploymentCircuitBreaker],
      [100, 200, { Enable: true, Rollback: true }],
      `${name} rolling deployment 100 %/200 % with rollback`,
    );
    is(tagsOf(service).Service, name, `${name} service's Service tag`);
    is(tagsOf(td!).Service, name, `${name} task definition's Service tag`);

    const target = targets.find((t) => JSON.stringify(t.Properties?.ResourceId).includes(`"${cap(name)}Service`));
    ok(target, `${name} scalable target`);
    is(
      { min: target!.Properties!.MinCapacity, max: target!.Properties!.MaxCapacity },
      { min: spec.min, max: spec.max },
      `${name} scales ${spec.min}-${spec.max} tasks`,
    );
    // Design: target tracking on CPU 70 %, memory 80 %, 1,000 ALB requests per target. Cooldowns
    // (300 s in, 60 s out) pinned, design silent.
    const tracking = Object.fromEntries(
      policies
        .filter((p) => p.Properties!.ScalingTargetId?.Ref === target!.Id)
        .map((p) => p.Properties!.TargetTrackingScalingPolicyConfiguration)
        .map((c: any) => [c.PredefinedMetricSpecification.PredefinedMetricType, [c.TargetValue, c.ScaleInCooldown, c.ScaleOutCooldown]]),
    );
    is(
      tracking,
      {
        ECSServiceAverageCPUUtilization: [70, 300, 60],
        ECSServiceAverageMemoryUtilization: [80, 300, 60],
        ALBRequestCountPerTarget: [1000, 300, 60],
      },
      `${name} target tracking [target, scale-in cooldown, scale-out cooldown]: CPU 70 %, memory 80 %, 1,000 requests per target`,
    );
    // Design: "Scheduled scaling: scale up before known traffic peaks, Black Friday preparation".
    // From Thanksgiving evening to the first Tuesday of December (pinned, design silent).
    is(
      (target!.Properties!.ScheduledActions ?? []).map((a: any) => [
        a.ScheduledActionName,
        a.Schedule,
        a.Timezone,
        a.ScalableTargetAction.MinCapacity,
        a.ScalableTargetAction.MaxCapacity,
      ]),
      [
        ['BlackFridayFloor', 'cron(0 18 ? 11 THU#4 *)', 'America/New_York', spec.peakMin, spec.max],
        ['BlackFridayEnd', 'cron(0 6 ? 12 TUE#1 *)', 'America/New_York', spec.min, spec.max],
      ],
      `${name} scheduled scaling [name, schedule, zone, min, max]`,
    );
  }

  // ------------------------------------------------------------------ web tier
  // Design: "Environment variables from Parameter Store". Its own setting lives there and reaches
  // the task at start; it calls the product, inventory and order services inside the VPC, and its
  // task role holds nothing but the readiness checks' reads (no tables, no queue, no events).
  const webTask = taskDefs.find((t) => t.Properties?.Family === `shop-${env}-web`)!;
  const web = webTask.Properties!.ContainerDefinitions[0];
  const parameters = of('AWS::SSM::Parameter');
  is(
    parameters.map((p) => [p.Properties!.Name, p.Properties!.Type, p.Properties!.Value, tagsOf(p).Service]),
    [
      [`/shop/${env}/web/store_name`, 'String', 'Shop', 'web'],
      [`/shop/${env}/web/stripe_publishable_key`, 'String', 'pk_live_set_the_shops_key_after_the_first_deploy', 'web'],
    ],
    'Parameter Store settings [name, type, initial value, Service tag]',
  );
  for (const [i, variable] of ['SHOP_STORE_NAME', 'SHOP_STRIPE_PUBLISHABLE_KEY'].entries()) {
    const secret = web.Secrets.find((x: any) => x.Name === variable);
    ok(secret && JSON.stringify(secret.ValueFrom).includes(`{"Ref":"${parameters[i].Id}"}`), `web reads ${variable} from Parameter Store`);
  }
  is(
    ['SHOP_PRODUCT_URL', 'SHOP_INVENTORY_URL', 'SHOP_ORDER_URL', 'SHOP_USER_URL', 'SHOP_PUBLIC_URL'].map((n) => web.Environment.find((e: any) => e.Name === n)?.Value),
    [`http://product.${env}.shop.internal:8080`, `http://inventory.${env}.shop.internal:8080`, `http://order.${env}.shop.internal:8080`, undefined, `https://${E.domain}`],
    'web calls product, inventory and order (service discovery) and is reached on https://<domain>',
  );
  const webRole = deref(webTask, webTask.Properties!.TaskRoleArn)!;
  const webActions = of('AWS::IAM::Policy')
    .filter((p) => p.Stack === webRole.Stack && (p.Properties!.Roles ?? []).some((r: any) => r.Ref === webRole.Id))
    .flatMap((p) => p.Properties!.PolicyDocument.Statement)
    .flatMap((st: any) => [st.Action].flat());
  is([...new Set(webActions)].sort(), ['s3:GetObject', 's3:ListBucket', 'sqs:ListQueues'], 'web task role: the readiness checks\' reads only');

  // ------------------------------------------------------------------ ALB
  // HTTPS (TLS 1.2+), redirect, health checks.
  const listeners = of('AWS::ElasticLoadBalancingV2::Listener').map((l) => l.Properties!);
  const https = listeners.filter((l) => l.Protocol === 'HTTPS');
  is(https.map((l) => l.Port), [443], 'HTTPS listener on 443 (design)');
  // Design: encryption in transit, TLS 1.2+: the policy offers TLS 1.3 and 1.2, nothing older.
  is(https[0].SslPolicy, 'ELBSecurityPolicy-TLS13-1-2-2021-06', 'ALB TLS policy (TLS 1.2 minimum)');
  const http = listeners.filter((l) => l.Protocol === 'HTTP');
  is(
    http.map((l) => [l.Port, l.DefaultActions[0].Type, l.DefaultActions[0].RedirectConfig]),
    [[80, 'redirect', { Port: '443', Protocol: 'HTTPS', StatusCode: 'HTTP_301' }]],
    'port 80 only redirects to HTTPS (design)',
  );
  const targetGroups = of('AWS::ElasticLoadBalancingV2::TargetGroup');
  is(targetGroups.map((t) => t.Properties!.Name).sort(), Object.keys(SERVICES).map((s) => `shop-${env}-${s}`).sort(), 'one target group per service');
  for (const tg of targetGroups) {
    const p = tg.Properties!;
    // Design: path /health, interval 30 s, timeout 5 s. Thresholds and codes pinned (design silent).
    is(
      {
        path: p.HealthCheckPath,
        interval: p.HealthCheckIntervalSeconds,
        timeout: p.HealthCheckTimeoutSeconds,
        healthy: p.HealthyThresholdCount,
        unhealthy: p.UnhealthyThresholdCount,
        codes: p.Matcher?.HttpCode,
      },
      { path: '/health', interval: 30, timeout: 5, healthy: 2, unhealthy: 3, codes: '200' },
      `${p.Name} health check`,
    );
    is(tagsOf(tg).Service, p.Name.replace(`shop-${env}-`, ''), `${p.Name} Service tag`);
  }
  // Design: the ALB's target groups for the web tier and the APIs. The API prefixes have their
  // rules; everything else (the storefront's pages, /static/, any unknown path) goes to the web tier.
  const httpsListener = of('AWS::ElasticLoadBalancingV2::Listener').find((l) => l.Properties!.Protocol === 'HTTPS')!;
  is(
    https[0].DefaultActions.map((a: any) => [a.Type, deref(httpsListener, a.TargetGroupArn)?.Properties?.Name]),
    [['forward', `shop-${env}-web`]],
    'HTTPS listener default action: forward to the web tier',
  );

  // ------------------------------------------------------------------ API Gateway
  // Design: stage prod, 5,000 requests/second, caching with a TTL by endpoint, Cognito for
  // customers, IAM for admin functions.
  is(of('AWS::ApiGateway::Stage').map((s) => s.Properties!.StageName), ['prod'], 'API Gateway stage prod');
  const stage = of('AWS::ApiGateway::Stage')[0].Properties!;
  const settings = new Map<string, any>(stage.MethodSettings.map((m: any) => [`${m.HttpMethod} ${m.ResourcePath}`, m]));
  const products = 'GET /~1api~1v1~1products~1{proxy+}';
  const categories = 'GET /~1api~1v1~1categories~1{proxy+}';
  is([...settings.keys()].sort(), ['* /*', categories, products].sort(), 'API Gateway method settings');
  const everything = settings.get('* /*');
  is(everything.ThrottlingRateLimit, 5000, 'API Gateway throttling rate 5,000 rps (design)');
  is(everything.ThrottlingBurstLimit, 5000, 'API Gateway throttling burst (design silent: pinned)');
  is(everything.CachingEnabled ?? false, false, 'API Gateway caches no route by default (TTL by endpoint)');
  // Cache size and TTLs: design silent, pinned. Product and category detail 5 minutes.
  is(
    { enabled: stage.CacheClusterEnabled, size: stage.CacheClusterSize },
    { enabled: true, size: '0.5' },
    'API Gateway stage cache (GB)',
  );
  for (const key of [products, categories]) {
    const m = settings.get(key);
    is(
      { caching: m.CachingEnabled, ttl: m.CacheTtlInSeconds, encrypted: m.CacheDataEncrypted },
      { caching: true, ttl: 300, encrypted: true },
      `API Gateway cache of ${key}`,
    );
  }
  const methods = of('AWS::ApiGateway::Method').map((m) => m.Properties!);
  const cachedMethods = methods.filter((m) => m.HttpMethod === 'GET' && /\/v1\/(products|categories)\/\{proxy\}$/.test(m.Integration.Uri));
  is(
    cachedMethods.map((m) => m.Integration.CacheKeyParameters),
    [['method.request.path.proxy'], ['method.request.path.proxy']],
    'cached routes key the cache on the path',
  );
  ok(methods.some((m) => m.AuthorizationType === 'COGNITO_USER_POOLS'), 'Cognito authorizer on shopper routes');
  ok(methods.some((m) => m.AuthorizationType === 'AWS_IAM' && m.Integration.Uri.endsWith('/admin/{proxy}')), 'IAM on admin routes');
  ok(methods.some((m) => m.AuthorizationType === 'NONE' && m.Integration.Uri.endsWith('/v1/payments/webhooks/stripe')), 'Stripe webhook without Cognito');
  is(
    of('AWS::ApiGateway::Authorizer').map((a) => [a.Properties!.Type, a.Properties!.AuthorizerResultTtlInSeconds]),
    [['COGNITO_USER_POOLS', 300]],
    'Cognito authorizer [type, result cache s] (cache design silent: pinned)',
  );
  is(
    of('AWS::ApiGateway::DomainName').map((d) => [d.Properties!.DomainName, d.Properties!.SecurityPolicy]),
    [[`gateway.${E.domain}`, 'TLS_1_2']],
    'API Gateway domain TLS minimum 1.2',
  );

  // ------------------------------------------------------------------ CloudFront
  // Design: the ALB for dynamic content (the web tier's pages) and /api/* with headers, 1 year TTL
  // on /static/*, S3 for images, origin access control, WAF, TLS. The web tier serves /static/*
  // itself (content-hashed files built into its image), so that behaviour's origin is the ALB.
  const cdn = of('AWS::CloudFront::Distribution')[0];
  const dist = cdn.Properties!.DistributionConfig;
  const originName = (id: string) => {
    const o = dist.Origins.find((x: any) => x.Id === id);
    return o.S3OriginConfig ? deref(cdn, o.DomainName)?.Properties?.BucketName : o.DomainName;
  };
  const cachePolicy = (id: any) => {
    if (typeof id === 'string') return id;
    const c = deref(cdn, id)!.Properties!.CachePolicyConfig;
    return { defaultTtl: c.DefaultTTL, maxTtl: c.MaxTTL, minTtl: c.MinTTL };
  };
  /** A custom policy's query strings, cookies and headers (`none`, `all` or the names listed). */
  const forwarded = (c: any) => ({
    queryStrings: c.QueryStringsConfig.QueryStrings ?? c.QueryStringsConfig.QueryStringBehavior,
    cookies: c.CookiesConfig.Cookies ?? c.CookiesConfig.CookieBehavior,
    headers: c.HeadersConfig.Headers ?? c.HeadersConfig.HeaderBehavior,
  });
  const originRequestPolicy = (id: any) =>
    id === undefined || typeof id === 'string' ? id : forwarded(deref(cdn, id)!.Properties!.OriginRequestPolicyConfig);
  const behavior = (b: any) => ({
    origin: originName(b.TargetOriginId),
    cache: cachePolicy(b.CachePolicyId),
    originRequest: originRequestPolicy(b.OriginRequestPolicyId),
    viewer: b.ViewerProtocolPolicy,
    methods: b.AllowedMethods.length,
  });
  const alb = `api.${E.domain}`;
  const assetsBucket = `shop-${env}-assets-${E.account}`;
  // /static/*: 1 year (design). /images/*: the design gives no TTL; a year too (pinned).
  const yearCache = { defaultTtl: ONE_YEAR_S, maxTtl: ONE_YEAR_S, minTtl: 0 };
  const behaviors = Object.fromEntries(dist.CacheBehaviors.map((b: any) => [b.PathPattern, behavior(b)]));
  is(behaviors['/static/*'], { origin: alb, cache: yearCache, originRequest: undefined, viewer: 'redirect-to-https', methods: 2 }, 'CloudFront /static/*: the web tier, 1 year (TTL s)');
  is(behaviors['/images/*'], { origin: assetsBucket, cache: yearCache, originRequest: undefined, viewer: 'redirect-to-https', methods: 2 }, 'CloudFront /images/* (TTL s)');
  is(
    behaviors['/api/*'],
    { origin: alb, cache: CACHING_DISABLED, originRequest: ALL_VIEWER_EXCEPT_HOST_HEADER, viewer: 'https-only', methods: 7 },
    'CloudFront /api/*: the ALB, not cached, viewer headers forwarded',
  );
  // The storefront's pages: kept as long as their Cache-Control allows (no Cache-Control, not kept;
  // at most a day: pinned, design silent), keyed on the path and query string; the web tier gets
  // every query string and cookie, Accept, and the headers its forms' origin check reads. Every
  // method (the cart's and checkout's form posts).
  is(
    behavior(dist.DefaultCacheBehavior),
    {
      origin: alb,
      cache: { defaultTtl: 0, maxTtl: 86400, minTtl: 0 },
      originRequest: { queryStrings: 'all', cookies: 'all', headers: ['Accept', 'Host', 'Origin', 'Sec-Fetch-Site'] },
      viewer: 'redirect-to-https',
      methods: 7,
    },
    'CloudFront default behavior: the web tier\'s pages through the ALB, as their Cache-Control says',
  );
  is(
    forwarded(deref(cdn, dist.DefaultCacheBehavior.CachePolicyId)!.Properties!.CachePolicyConfig.ParametersInCacheKeyAndForwardedToOrigin),
    { queryStrings: 'all', cookies: 'none', headers: 'none' },
    'CloudFront page cache key: the query string; no cookies (signed-in pages are private, no-store), no headers',
  );
  // For one path the web tier answers a browser with its not-found page and an API client with a
  // problem (by Accept, not in the key): no not-found answer is kept.
  is(
    (dist.CustomErrorResponses ?? []).map((r: any) => [r.ErrorCode, r.ErrorCachingMinTTL, r.ResponseCode, r.ResponsePagePath]),
    [[404, 0, undefined, undefined]],
    'CloudFront keeps no 404 [code, TTL s, replaced code, page]',
  );
  is(Object.keys(behaviors).sort(), ['/api/*', '/images/*', '/static/*'], 'CloudFront behaviors');
  // Uploaded images are served from the shop's own domain: never as a page that runs script.
  const headerPolicy = (b: any) => deref(cdn, b.ResponseHeadersPolicyId)?.Properties?.ResponseHeadersPolicyConfig?.SecurityHeadersConfig;
  const imageBehavior = dist.CacheBehaviors.find((b: any) => b.PathPattern === '/images/*');
  const imageHeaders = headerPolicy(imageBehavior);
  ok(imageHeaders?.ContentTypeOptions?.Override === true, '/images/* answers X-Content-Type-Options: nosniff');
  is(imageHeaders?.ContentSecurityPolicy?.ContentSecurityPolicy, "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox", '/images/* Content-Security-Policy');
  for (const b of [dist.DefaultCacheBehavior, ...dist.CacheBehaviors.filter((x: any) => x.PathPattern === '/static/*')]) {
    ok(/script-src|default-src 'self'/.test(headerPolicy(b)?.ContentSecurityPolicy?.ContentSecurityPolicy ?? ''), `${b.PathPattern ?? 'default'}: a Content-Security-Policy`);
  }
  // The pages keep the web tier's own policy: the checkout's admits Stripe's Payment Element.
  is(headerPolicy(dist.DefaultCacheBehavior)?.ContentSecurityPolicy?.Override, false, "pages keep the web tier's Content-Security-Policy");
  is(headerPolicy(imageBehavior)?.ContentSecurityPolicy?.Override, true, '/images/* Content-Security-Policy replaces any other');
  ok(dist.Origins.filter((o: any) => o.S3OriginConfig).every((o: any) => o.OriginAccessControlId), 'S3 origins use OAC');
  is(dist.ViewerCertificate.MinimumProtocolVersion, 'TLSv1.2_2021', 'CloudFront viewer TLS minimum');
  is(dist.ViewerCertificate.SslSupportMethod, 'sni-only', 'CloudFront SNI');
  const albOrigins = dist.Origins.filter((o: any) => o.CustomOriginConfig);
  is(
    albOrigins.map((o: any) => [o.CustomOriginConfig.OriginProtocolPolicy, o.CustomOriginConfig.OriginSSLProtocols, o.CustomOriginConfig.OriginReadTimeout]),
    [['https-only', ['TLSv1.2'], 30]],
    'CloudFront to the ALB: HTTPS, TLS 1.2, read timeout s (pinned)',
  );
  const bucketPolicies = JSON.stringify(of('AWS::S3::BucketPolicy').map((p) => p.Properties!.PolicyDocument));
  ok(bucketPolicies.includes('/images/*') && !bucketPolicies.includes('/labels/') && !bucketPolicies.includes('/uploads/'), 'CloudFront reads images/, never labels/ or unchecked uploads/');
  const assets = of('AWS::S3::Bucket').find((b) => String(b.Properties!.BucketName?.['Fn::Join']?.[1]?.join?.('') ?? b.Properties!.BucketName).includes('-assets-'));
  ok(
    assets?.Properties!.LifecycleConfiguration?.Rules?.some((r: any) => r.Prefix === 'uploads/' && r.ExpirationInDays === 1),
    'uploads never completed expire after a day',
  );

  // ------------------------------------------------------------------ WAF
  // Design: WAF on CloudFront (DDoS) and for application-level protection. AWS managed rules and a
  // per-client rate limit on the API of 3,000 requests per 5 minutes (design silent: pinned).
  const aclName = (from: Resource, arn: any) => deref(from, arn)?.Properties?.Name;
  is(aclName(cdn, dist.WebACLId), `shop-${env}-cloudfront`, 'WAF on CloudFront');
  is(
    of('AWS::WAFv2::WebACLAssociation').map((a) => aclName(a, a.Properties!.WebACLArn)).sort(),
    [`shop-${env}-alb`, `shop-${env}-gateway`],
    'WAF on the ALB and API Gateway',
  );
  is(of('AWS::WAFv2::LoggingConfiguration').length, 3, 'every web ACL logged');
  const rule = (r: any) => {
    const s = r.Statement;
    if (s.RateBasedStatement) {
      const rb = s.RateBasedStatement;
      const scope = rb.ScopeDownStatement?.ByteMatchStatement?.SearchString ?? (rb.ScopeDownStatement?.NotStatement ? 'no-x-forwarded-for' : 'all');
      const fallback = rb.ForwardedIPConfig ? ` ${rb.ForwardedIPConfig.HeaderName}:${rb.ForwardedIPConfig.FallbackBehavior}` : '';
      return `${r.Priority} ${r.Name} ${Object.keys(r.Action)[0]} ${rb.AggregateKeyType}${fallback} ${rb.Limit} ${scope}`;
    }
    const g = s.ManagedRuleGroupStatement;
    const counted = (g.RuleActionOverrides ?? []).map((o: any) => ` ${Object.keys(o.ActionToUse)[0]}:${o.Name}`).join('');
    return `${r.Priority} ${g.VendorName}/${g.Name} override:${Object.keys(r.OverrideAction)[0]}${counted}`;
  };
  const managed = (countBody: boolean) => [
    '1 AWS/AWSManagedRulesAmazonIpReputationList override:None',
    `2 AWS/AWSManagedRulesCommonRuleSet override:None${countBody ? ' Count:SizeRestrictions_BODY' : ''}`,
    '3 AWS/AWSManagedRulesKnownBadInputsRuleSet override:None',
    '4 AWS/AWSManagedRulesSQLiRuleSet override:None',
  ];
  // Per-client rate limits: never keyed only on a header a client writes, and none a client
  // escapes by leaving the header out. CloudFront and API Gateway see the client's connection;
  // the ALB keys direct callers on theirs and forwarded requests on X-Forwarded-For. Large bodies
  // are legitimate on the regional side (admin imports): that one rule only counts there.
  const expectedAcls: Record<string, [string, string[]]> = {
    cloudfront: ['CLOUDFRONT', ['0 api-rate-limit Block IP 3000 /api/', ...managed(false)]],
    gateway: ['REGIONAL', ['0 api-rate-limit Block IP 3000 all', ...managed(true)]],
    alb: [
      'REGIONAL',
      ['0 direct-rate-limit Block IP 3000 no-x-forwarded-for', ...managed(true), '11 forwarded-rate-limit Block FORWARDED_IP X-Forwarded-For:MATCH 3000 all'],
    ],
  };
  is(of('AWS::WAFv2::WebACL').map((a) => a.Properties!.Name).sort(), Object.keys(expectedAcls).map((k) => `shop-${env}-${k}`).sort(), 'web ACLs');
  for (const [kind, [scope, rules]] of Object.entries(expectedAcls)) {
    const acl = of('AWS::WAFv2::WebACL').find((a) => a.Properties!.Name === `shop-${env}-${kind}`)!.Properties!;
    is([acl.Scope, Object.keys(acl.DefaultAction)], [scope, ['Allow']], `${kind} web ACL scope and default`);
    is(
      [...acl.Rules].sort((a: any, b: any) => a.Priority - b.Priority).map(rule),
      rules,
      `${kind} web ACL rules [priority name action key limit/5 min scope]`,
    );
  }

  // ------------------------------------------------------------------ Route 53
  // Design: health checks of the primary region's ALB, database connectivity and the critical
  // service endpoints; active-passive failover to the DR region. Interval and threshold pinned.
  const checks = of('AWS::Route53::HealthCheck').map((h) => h.Properties!.HealthCheckConfig);
  is(checks.length, 7, 'a readiness health check per service and the calculated one');
  for (const name of Object.keys(SERVICES)) {
    const c = checks.find((x) => x.ResourcePath === `/_ready/${name}`);
    is(
      c && { type: c.Type, port: c.Port, interval: c.RequestInterval, failures: c.FailureThreshold, sni: c.EnableSNI },
      { type: 'HTTPS', port: 443, interval: 30, failures: 3, sni: true },
      `${name} readiness health check`,
    );
  }
  const calculated = checks.find((c) => c.Type === 'CALCULATED');
  is(calculated && [calculated.HealthThreshold, calculated.ChildHealthChecks.length], [6, 6], 'primary region healthy only with all six services ready');
  const records = of('AWS::Route53::RecordSet').map((r) => r.Properties!);
  const failover = records.filter((r) => r.Failover).map((r) => [r.Name, r.Failover]).sort();
  is(failover, [[`api.${E.domain}.`, 'PRIMARY'], [`api.${E.domain}.`, 'SECONDARY']], 'api failover records');
  ok(records.some((r) => r.Name === `${E.domain}.` && r.Type === 'A' && JSON.stringify(r.AliasTarget?.DNSName).includes(cdn.Id)), 'the shop domain → CloudFront');

  // ------------------------------------------------------------------ RDS
  // Design: PostgreSQL db.r5.xlarge, Multi-AZ, 2 read replicas, 7-day backups, KMS, Performance
  // Insights, TLS. Storage pinned (design silent).
  const dbs = of('AWS::RDS::DBInstance').map((d) => d.Properties!);
  const primary = dbs.find((d) => !d.SourceDBInstanceIdentifier)!;
  is(primary.Engine, 'postgres', 'RDS engine');
  is(primary.DBInstanceClass, 'db.r5.xlarge', 'RDS instance class');
  is(primary.MultiAZ, true, 'RDS Multi-AZ');
  is(primary.BackupRetentionPeriod, 7, 'RDS backup retention (days)');
  ok(primary.StorageEncrypted === true && primary.KmsKeyId, 'RDS encrypted with KMS');
  is(primary.EnablePerformanceInsights, true, 'RDS Performance Insights');
  is([primary.StorageType, primary.AllocatedStorage, primary.MaxAllocatedStorage], ['gp3', '200', 1000], 'RDS storage (GB)');
  const replicas = dbs.filter((d) => d.SourceDBInstanceIdentifier);
  is(replicas.map((r) => [r.DBInstanceClass, r.MultiAZ]), [['db.r5.xlarge', true], ['db.r5.xlarge', true]], 'two read replicas [class, Multi-AZ]');
  is(of('AWS::RDS::DBParameterGroup').map((p) => p.Properties!.Parameters['rds.force_ssl']), ['1'], 'RDS forces TLS');

  // ------------------------------------------------------------------ DynamoDB
  // Exact tables, keys and GSIs; design: on demand, point-in-time recovery, customer managed keys.
  const tables = of('AWS::DynamoDB::Table');
  is(tables.map((t) => t.Properties!.TableName).sort(), Object.keys(TABLES).sort(), 'DynamoDB tables');
  for (const [name, spec] of Object.entries(TABLES)) {
    const table = tables.find((x) => x.Properties!.TableName === name)!;
    const t = table.Properties!;
    const attr = (a: string) => t.AttributeDefinitions.find((d: any) => d.AttributeName === a)?.AttributeType;
    const keys = (schema: any[]) => schema.map((k) => `${k.AttributeName}:${attr(k.AttributeName)}`).join(' ');
    is(keys(t.KeySchema), spec.keys, `${name} key schema`);
    is(
      Object.fromEntries((t.GlobalSecondaryIndexes ?? []).map((g: any) => [g.IndexName, keys(g.KeySchema)])),
      spec.gsis ?? {},
      `${name} GSIs`,
    );
    ok((t.GlobalSecondaryIndexes ?? []).every((g: any) => g.Projection.ProjectionType === 'ALL'), `${name} GSIs project ALL`);
    ok(t.BillingMode === 'PAY_PER_REQUEST' && t.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled &&
      t.SSESpecification.SSEType === 'KMS' && t.SSESpecification.KMSMasterKeyId && t.StreamSpecification, `${name} settings`);
    is(tagsOf(table).Service, spec.owner, `${name} Service tag`);
  }

  // ------------------------------------------------------------------ ElastiCache, OpenSearch
  const redisGroups = of('AWS::ElastiCache::ReplicationGroup');
  is(redisGroups.length, 1, 'one Redis replication group');
  const redis = redisGroups[0].Properties!;
  is(redis.CacheNodeType, 'cache.r6g.large', 'Redis node type');
  is(redis.NumCacheClusters, 3, 'Redis nodes');
  ok(redis.AutomaticFailoverEnabled && redis.MultiAZEnabled, 'Redis failover across AZs');
  // Design: daily snapshots. Kept 7 days (pinned, design silent).
  is(redis.SnapshotRetentionLimit, 7, 'Redis snapshot retention (days)');
  ok(typeof redis.SnapshotWindow === 'string', 'Redis daily snapshot window');
  ok(redis.TransitEncryptionEnabled && redis.AtRestEncryptionEnabled && redis.KmsKeyId, 'Redis TLS and KMS');
  // Revocations, throttles and claims live in Redis: nothing is evicted under memory pressure.
  const redisParameters = of('AWS::ElastiCache::ParameterGroup');
  is(redisParameters.map((p) => p.Properties!.Properties?.['maxmemory-policy']), ['noeviction'], 'Redis maxmemory-policy');
  is(JSON.stringify(redis.CacheParameterGroupName), JSON.stringify({ Ref: redisParameters[0].Id }), 'Redis uses that parameter group');
  const domains = of('AWS::OpenSearchService::Domain');
  is(domains.length, 1, 'one OpenSearch domain');
  const search = domains[0].Properties!;
  const cluster = search.ClusterConfig;
  is(cluster.InstanceType, 'r6g.large.search', 'OpenSearch instance type');
  is(cluster.InstanceCount, 3, 'OpenSearch data nodes (design silent: pinned)');
  is(
    [cluster.DedicatedMasterEnabled, cluster.DedicatedMasterType, cluster.DedicatedMasterCount, cluster.ZoneAwarenessConfig?.AvailabilityZoneCount],
    [true, 'm6g.large.search', 3, 3],
    'OpenSearch dedicated masters and zones (design silent: pinned)',
  );
  is(search.EBSOptions, { EBSEnabled: true, VolumeType: 'gp3', VolumeSize: 100 }, 'OpenSearch storage 100 GB gp3');
  is(search.DomainEndpointOptions, { EnforceHTTPS: true, TLSSecurityPolicy: 'Policy-Min-TLS-1-2-PFS-2023-10' }, 'OpenSearch HTTPS, TLS 1.2 minimum');
  ok(search.NodeToNodeEncryptionOptions.Enabled && search.EncryptionAtRestOptions.Enabled, 'OpenSearch encrypted');
  is(tagsOf(domains[0]).Service, 'product', 'OpenSearch Service tag');

  // ------------------------------------------------------------------ SQS, secrets
  // Design: SQS for order processing with a dead letter queue. Receives, retention, visibility
  // pinned (design silent).
  const queues = of('AWS::SQS::Queue');
  is(queues.length, 10, 'a queue and a dead-letter queue per consuming service');
  for (const [name, spec] of Object.entries(SERVICES)) {
    if (!spec.queue) continue;
    const q = queues.find((x) => x.Properties!.QueueName === spec.queue);
    const dlq = queues.find((x) => x.Properties!.QueueName === `${spec.queue}-dlq`);
    ok(q && dlq && q.Properties!.KmsMasterKeyId && dlq.Properties!.KmsMasterKeyId, `queue ${spec.queue} and its DLQ, KMS`);
    is(
      [q!.Properties!.RedrivePolicy?.maxReceiveCount, q!.Properties!.MessageRetentionPeriod, q!.Properties!.VisibilityTimeout, dlq!.Properties!.MessageRetentionPeriod,
        q!.Properties!.MaximumMessageSize, dlq!.Properties!.MaximumMessageSize],
      // The message size the platform refuses above (platform::events::bus::MAX_MESSAGE_BYTES).
      [5, 4 * 86400, 60, 14 * 86400, 256 * 1024, 256 * 1024],
      `queue ${spec.queue} [receives, retention s, visibility s, DLQ retention s, max message bytes (queue, DLQ)]`,
    );
    is([tagsOf(q!).Service, tagsOf(dlq!).Service], [name, name], `queue ${spec.queue} Service tags`);
  }
  ok(of('AWS::SecretsManager::Secret').length >= 6, 'secrets');

  // Log retention (design silent; a year of audit history, PCI DSS 10.5.1: pinned).
  const logGroups = of('AWS::Logs::LogGroup');
  ok(logGroups.length > 0, `log groups: ${logGroups.length}`);
  is(
    logGroups.filter((g) => g.Properties!.RetentionInDays !== 365 || !g.Properties!.KmsKeyId).map((g) => `${g.Stack}/${g.Id}`),
    [],
    'every log group kept 365 days, KMS encrypted',
  );

  // ------------------------------------------------------------------ mail, edge token
  // Mail: the user service sends through SES from a verified identity, and may send only as it.
  ok(of('AWS::SES::EmailIdentity').length === 1, 'SES identity of the shop domain');
  const user = taskDefs.find((t) => t.Properties?.Family === `shop-${env}-user`)!.Properties!.ContainerDefinitions[0];
  const userEnv = (name: string) => user.Environment.find((e: any) => e.Name === name)?.Value;
  ok(JSON.stringify(userEnv('SHOP_COGNITO_ISSUER')).includes('cognito-idp') && userEnv('SHOP_COGNITO_CLIENT_ID'), 'user trades Cognito ID tokens');
  ok(userEnv('SHOP_MAIL_SINK') === 'ses' && /^Shop <no-reply@[^>]+>$/.test(userEnv('SHOP_MAIL_FROM')), 'user mails through SES');
  const sendMail = of('AWS::IAM::Policy').flatMap((p) => p.Properties!.PolicyDocument.Statement).filter((st: any) => st.Sid === 'SendMail');
  ok(sendMail.length === 1 && sendMail[0].Condition.StringEquals['ses:FromAddress'], 'only the user service sends mail, as itself');

  // Throttles and rate limits count the viewer, not the edge in front of the ALB.
  const orderTask = taskDefs.find((t) => t.Properties?.Family === `shop-${env}-order`)!.Properties!.ContainerDefinitions[0];
  const hops = orderTask.Environment.find((e: any) => e.Name === 'SHOP_TRUSTED_PROXY_HOPS')?.Value;
  ok(userEnv('SHOP_TRUSTED_PROXY_HOPS') === '2' && hops === '2', 'the viewer address is read past CloudFront/API Gateway and the ALB');
  // ... but only on requests that came through an edge: both edges send the edge token on every
  // request, and every service holds it, so a caller straight to the ALB cannot pose as a viewer.
  const edgeSecret = (family: string) => taskDefs.find((t) => t.Properties?.Family === `shop-${env}-${family}`)!
    .Properties!.ContainerDefinitions[0].Secrets.find((s: any) => s.Name === 'SHOP_EDGE_SECRET');
  ok(Object.keys(SERVICES).every((name) => edgeSecret(name)), 'every service knows the edge token');
  ok(albOrigins.length > 0 && albOrigins.every((o: any) => (o.OriginCustomHeaders ?? []).some((h: any) => h.HeaderName === 'X-Shop-Edge')),
    'CloudFront sends the edge token to the ALB');
  const integrations = methods.map((m) => m.Integration).filter((i: any) => i?.Type === 'HTTP_PROXY');
  ok(integrations.length > 0 && integrations.every((i: any) => i.RequestParameters?.['integration.request.header.X-Shop-Edge']),
    'API Gateway sends the edge token on every route');

  // ------------------------------------------------------------------ observability
  ok(of('AWS::CloudWatch::Dashboard').length === 1, 'dashboard');
  // Every alarm: [threshold, comparison, evaluation periods, datapoints to alarm, missing data].
  // Design ("critical alerts"): payment processing failures, database connectivity, error rates
  // above 5 %, API latency above 2 s; ("business alerts"): a drop in orders, cart abandonment, low
  // stock; CloudWatch billing alerts. The design gives numbers only for the error rate (5 %) and
  // latency (2 s); every other threshold and window is pinned (design silent). Periods: 1 minute
  // for error rate and latency (3 of 5), 5 minutes for payments (3 × 5 min = 15 min), 1 hour for
  // abandonment (3 h), 6 hours for billing.
  const GT = 'GreaterThanThreshold';
  const LT = 'LessThanThreshold';
  type AlarmSpec = [number | undefined, string, number, number | undefined, string];
  const deadLetters: AlarmSpec = [0, GT, 1, undefined, 'notBreaching'];
  const notReady: AlarmSpec = [1, LT, 3, undefined, 'breaching'];
  const expectedAlarms: Record<string, AlarmSpec> = {
    'payment-failures': [20, GT, 3, undefined, 'notBreaching'],
    'payment-commands-dead-letters': deadLetters,
    'reconcile-unrepaired': [0, GT, 1, undefined, 'notBreaching'],
    'outbox-parked': [0, GT, 1, undefined, 'notBreaching'],
    'database-no-connections': notReady,
    'api-gateway-error-rate': [0.05, GT, 5, 3, 'notBreaching'],
    'api-gateway-latency': [2000, GT, 5, 3, 'notBreaching'],
    'orders-dropped': [undefined, 'LessThanLowerThreshold', 3, undefined, E.ordersDroppedMissingData],
    'inventory-low-stock': [0, GT, 1, undefined, 'notBreaching'],
    'cart-abandonment': [80, GT, 3, undefined, 'notBreaching'],
    billing: [E.billingAlarmUsd, GT, 1, undefined, 'notBreaching'],
  };
  for (const [name, spec] of Object.entries(SERVICES)) {
    if (name !== 'payment' && spec.queue) expectedAlarms[`${name}-dead-letters`] = deadLetters;
    expectedAlarms[`${name}-not-ready`] = notReady;
    expectedAlarms[`${name}-error-rate`] = [5, GT, 5, 3, 'notBreaching'];
    expectedAlarms[`${name}-latency`] = [2, GT, 5, 3, 'notBreaching'];
  }
  const alarms = new Map(of('AWS::CloudWatch::Alarm').map((a) => [a.Properties!.AlarmName as string, a.Properties!]));
  is([...alarms.keys()].sort(), Object.keys(expectedAlarms).map((k) => `shop-${env}-${k}`).sort(), 'the alarms');
  for (const [name, expected] of Object.entries(expectedAlarms)) {
    const a = alarms.get(`shop-${env}-${name}`)!;
    is(
      [a.Threshold, a.ComparisonOperator, a.EvaluationPeriods, a.DatapointsToAlarm, a.TreatMissingData],
      expected,
      `alarm ${name} [threshold, comparison, periods, datapoints, missing data]`,
    );
    // RDS without connections only feeds the database connectivity alarm, which notifies.
    is((a.AlarmActions ?? []).length, name === 'database-no-connections' ? 0 : 1, `alarm ${name} notification topics`);
  }
  const metricOf = (name: string) => {
    const a = alarms.get(`shop-${env}-${name}`)!;
    const stat = a.Metrics?.find((m: any) => m.MetricStat)?.MetricStat;
    return stat
      ? { metric: stat.Metric.MetricName, stat: stat.Stat, period: stat.Period }
      : { metric: a.MetricName, stat: a.ExtendedStatistic ?? a.Statistic, period: a.Period };
  };
  for (const name of Object.keys(SERVICES)) {
    // 5xx share of requests (%) and p95 response time (s) at the ALB.
    is(metricOf(`${name}-error-rate`), { metric: 'HTTPCode_Target_5XX_Count', stat: 'Sum', period: 60 }, `alarm ${name}-error-rate metric`);
    is(metricOf(`${name}-latency`), { metric: 'TargetResponseTime', stat: 'p95', period: 60 }, `alarm ${name}-latency metric`);
  }
  // API Gateway: 5XXError averaged is the share of requests (0.05 = 5 %); Latency is in ms.
  is(metricOf('api-gateway-error-rate'), { metric: '5XXError', stat: 'Average', period: 60 }, 'alarm api-gateway-error-rate metric');
  is(metricOf('api-gateway-latency'), { metric: 'Latency', stat: 'p95', period: 60 }, 'alarm api-gateway-latency metric');
  is(metricOf('payment-failures'), { metric: 'PaymentsFailed', stat: 'Sum', period: 300 }, 'alarm payment-failures metric');
  is(metricOf('cart-abandonment'), { metric: 'CartsAbandoned', stat: 'Sum', period: 3600 }, 'alarm cart-abandonment metric');
  const ordersDropped = alarms.get(`shop-${env}-orders-dropped`)!;
  is(
    [ordersDropped.Metrics.find((m: any) => m.Expression)?.Expression, metricOf('orders-dropped')],
    ['ANOMALY_DETECTION_BAND(m0, 3)', { metric: 'OrdersPlaced', stat: 'Sum', period: 300 }],
    'alarm orders-dropped: 3 standard deviations below the expected orders per 5 minutes',
  );
  const billing = alarms.get(`shop-${env}-billing`)!;
  is(
    [billing.Namespace, billing.MetricName, billing.Dimensions, billing.Statistic, billing.Period],
    ['AWS/Billing', 'EstimatedCharges', [{ Name: 'Currency', Value: 'USD' }], 'Maximum', 21600],
    'billing alarm metric',
  );
  const composite = of('AWS::CloudWatch::CompositeAlarm').map((a) => a.Properties!);
  is(composite.map((a) => a.AlarmName), [`shop-${env}-database-connectivity`], 'database connectivity alarm');
  is(
    [...JSON.stringify(composite[0].AlarmRule).matchAll(/(User|Payment)NotReady|DatabaseNoConnections/g)].map((m) => m[0]).sort(),
    ['DatabaseNoConnections', 'PaymentNotReady', 'UserNotReady'],
    'database connectivity: user or payment not ready, or RDS without connections',
  );

  // ------------------------------------------------------------------ cost allocation tags
  // Design: service-level cost allocation tags. Project, Environment and CostCenter on every
  // resource that takes tags (the CostCenter values are pinned, design silent); Service on each
  // service's resources (checked above).
  for (const type of TAGGED_TYPES) {
    const wrong = of(type)
      .map((r) => ({ r, t: tagsOf(r) }))
      .filter(({ t }) => t.Project !== 'shop' || t.Environment !== env || t.CostCenter !== E.costCenter)
      .map(({ r, t }) => `${r.Stack}/${r.Id} Project=${t.Project} Environment=${t.Environment} CostCenter=${t.CostCenter}`);
    is(wrong, [], `cost allocation tags Project=shop, Environment=${env}, CostCenter=${E.costCenter} on every ${type}`);
  }
  const untyped = [...new Set(all.filter((r) => Object.keys(tagsOf(r)).length > 0 && !TAGGED_TYPES.includes(r.Type)).map((r) => r.Type))];
  is(untyped, [], 'every tagged resource type is in the cost tag check');
  return n;
}

const envs = process.argv.slice(2);
for (const env of envs.length ? envs : ['staging', 'prod']) {
  if (env !== 'staging' && env !== 'prod') throw new Error(`unknown environment ${env}: use staging|prod`);
  console.log(`  ${env}: ${check(env)} requirement checks passed`);
}
