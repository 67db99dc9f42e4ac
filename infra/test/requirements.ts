/**
 * Checks the synthesized templates (cdk.out/<env>) against the numbers of the reference design and
 * the facts of the platform, so a refactor cannot quietly drop one. Run by check.sh after synth:
 *   npx ts-node --transpile-only test/requirements.ts staging prod
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HEALTH_CHECK, SCALING, SERVICES, TABLES } from '../lib/config';
import { title } from '../lib/util';

type Resource = { Type: string; Properties?: Record<string, any>; Metadata?: Record<string, any> };

function load(env: string): Map<string, Resource[]> {
  const dir = path.join(__dirname, '..', 'cdk.out', env);
  const byType = new Map<string, Resource[]>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.template.json'))) {
    const template = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    for (const r of Object.values(template.Resources ?? {}) as Resource[]) {
      byType.set(r.Type, [...(byType.get(r.Type) ?? []), r]);
    }
  }
  return byType;
}

function check(env: string): number {
  const all = load(env);
  const of = (type: string) => all.get(type) ?? [];
  let n = 0;
  const ok = (cond: unknown, what: string) => {
    assert.ok(cond, `${env}: ${what}`);
    n++;
  };

  // Network: private subnets, NAT, gateway + interface endpoints, flow logs.
  ok(of('AWS::EC2::NatGateway').length >= 1, 'NAT egress for Stripe');
  const endpoints = of('AWS::EC2::VPCEndpoint').map((e) => JSON.stringify(e.Properties?.ServiceName));
  for (const svc of ['s3', 'dynamodb', 'ecr.api', 'ecr.dkr', 'logs', 'secretsmanager', 'sqs', 'kms', 'sts']) {
    ok(endpoints.some((e) => e.includes(`.${svc}`)), `VPC endpoint for ${svc}`);
  }
  ok(of('AWS::EC2::FlowLog').length === 1, 'VPC flow logs');

  // ECS: task sizes, entry points, counts, scaling targets.
  const taskDefs = of('AWS::ECS::TaskDefinition');
  const services = of('AWS::ECS::Service');
  const targets = of('AWS::ApplicationAutoScaling::ScalableTarget');
  const policies = of('AWS::ApplicationAutoScaling::ScalingPolicy');
  for (const spec of SERVICES) {
    const td = taskDefs.find((t) => t.Properties?.Family === `shop-${env}-${spec.name}`);
    ok(td, `task definition of ${spec.name}`);
    ok(td!.Properties!.Cpu === String(spec.cpu) && td!.Properties!.Memory === String(spec.memoryMiB), `${spec.name} task size`);
    const container = td!.Properties!.ContainerDefinitions[0];
    ok(container.EntryPoint[0] === `/usr/local/bin/${spec.name}-service`, `${spec.name} runs its own binary`);
    ok(container.PortMappings[0].ContainerPort === 8080, `${spec.name} on port 8080`);
    const svc = services.find((s) => s.Properties?.ServiceName === `shop-${spec.name}`);
    ok(svc?.Properties?.DesiredCount === spec.minTasks, `${spec.name} desired count`);
    ok(
      targets.some((t) => t.Properties?.MinCapacity === spec.minTasks && t.Properties?.MaxCapacity === spec.maxTasks &&
        JSON.stringify(t.Properties?.ResourceId).includes(`"${title(spec.name)}Service`)),
      `${spec.name} scales ${spec.minTasks}-${spec.maxTasks}`,
    );
  }
  const tracking = policies.map((p) => p.Properties?.TargetTrackingScalingPolicyConfiguration).filter(Boolean);
  const byMetric = (m: string) => tracking.filter((t: any) => t.PredefinedMetricSpecification?.PredefinedMetricType === m);
  ok(byMetric('ECSServiceAverageCPUUtilization').every((t: any) => t.TargetValue === SCALING.cpuPercent) &&
    byMetric('ECSServiceAverageCPUUtilization').length === SERVICES.length, 'CPU 70 % target tracking');
  ok(byMetric('ECSServiceAverageMemoryUtilization').every((t: any) => t.TargetValue === SCALING.memoryPercent) &&
    byMetric('ECSServiceAverageMemoryUtilization').length === SERVICES.length, 'memory 80 % target tracking');
  ok(byMetric('ALBRequestCountPerTarget').every((t: any) => t.TargetValue === SCALING.albRequestsPerTarget) &&
    byMetric('ALBRequestCountPerTarget').length === SERVICES.length, '1,000 ALB requests per target');

  // ALB: HTTPS, redirect, health checks.
  const listeners = of('AWS::ElasticLoadBalancingV2::Listener');
  ok(listeners.some((l) => l.Properties?.Protocol === 'HTTPS' && l.Properties?.Port === 443), 'HTTPS listener');
  ok(listeners.some((l) => l.Properties?.Port === 80 && l.Properties?.DefaultActions[0].RedirectConfig?.Protocol === 'HTTPS'), 'HTTP→HTTPS redirect');
  for (const tg of of('AWS::ElasticLoadBalancingV2::TargetGroup')) {
    ok(tg.Properties?.HealthCheckPath === HEALTH_CHECK.path &&
      tg.Properties?.HealthCheckIntervalSeconds === HEALTH_CHECK.intervalSeconds &&
      tg.Properties?.HealthCheckTimeoutSeconds === HEALTH_CHECK.timeoutSeconds, 'target group /health 30 s / 5 s');
  }

  // API Gateway: stage prod, 5,000 rps, Cognito and IAM.
  const stage = of('AWS::ApiGateway::Stage')[0];
  ok(stage?.Properties?.StageName === 'prod', 'API Gateway stage prod');
  ok(stage.Properties!.MethodSettings.some((m: any) => m.HttpMethod === '*' && m.ThrottlingRateLimit === 5000), '5,000 rps throttling');
  const methods = of('AWS::ApiGateway::Method').map((m) => m.Properties!);
  ok(methods.some((m) => m.AuthorizationType === 'COGNITO_USER_POOLS'), 'Cognito authorizer on shopper routes');
  ok(methods.some((m) => m.AuthorizationType === 'AWS_IAM' && m.Integration.Uri.endsWith('/admin/{proxy}')), 'IAM on admin routes');
  ok(methods.some((m) => m.AuthorizationType === 'NONE' && m.Integration.Uri.endsWith('/v1/payments/webhooks/stripe')), 'Stripe webhook without Cognito');

  // CloudFront: OAC S3 for /static/* and /images/*, ALB for /api/*, WAF.
  const dist = of('AWS::CloudFront::Distribution')[0].Properties!.DistributionConfig;
  const behaviors = new Map(dist.CacheBehaviors.map((b: any) => [b.PathPattern, b.TargetOriginId]));
  ok(['/static/*', '/images/*', '/api/*'].every((p) => behaviors.has(p)), 'CloudFront behaviors');
  ok(dist.Origins.filter((o: any) => o.S3OriginConfig).every((o: any) => o.OriginAccessControlId), 'S3 origins use OAC');
  ok(dist.WebACLId, 'WAF on CloudFront');
  ok(of('AWS::WAFv2::WebACLAssociation').length === 2, 'WAF on ALB and API Gateway');
  // Per-client rate limits: never keyed only on a header a client writes, and none a client
  // escapes by leaving the header out.
  const rateRules = of('AWS::WAFv2::WebACL').flatMap((a) => a.Properties!.Rules).filter((r: any) => r.Statement.RateBasedStatement);
  const keys = (acl: string) => of('AWS::WAFv2::WebACL').find((a) => a.Properties!.Name === `shop-${env}-${acl}`)!
    .Properties!.Rules.filter((r: any) => r.Statement.RateBasedStatement).map((r: any) => r.Statement.RateBasedStatement.AggregateKeyType).sort();
  ok(rateRules.every((r: any) => r.Statement.RateBasedStatement.Limit > 0), 'rate limits set');
  ok(JSON.stringify(keys('cloudfront')) === '["IP"]' && JSON.stringify(keys('gateway')) === '["IP"]', 'edge limits key on the connection');
  ok(JSON.stringify(keys('alb')) === '["FORWARDED_IP","IP"]', 'the ALB limits direct callers on their connection');
  const bucketPolicies = JSON.stringify(of('AWS::S3::BucketPolicy').map((p) => p.Properties!.PolicyDocument));
  ok(bucketPolicies.includes('/images/*') && !bucketPolicies.includes('/labels/'), 'CloudFront reads images/, never labels/');

  // Route 53: health checks and a failover pair.
  ok(of('AWS::Route53::HealthCheck').length === SERVICES.length + 1, 'readiness health checks + calculated');
  const failover = of('AWS::Route53::RecordSet').map((r) => r.Properties?.Failover).filter(Boolean).sort();
  ok(JSON.stringify(failover) === '["PRIMARY","SECONDARY"]', 'failover records');

  // RDS: Multi-AZ, 2 replicas, 7-day backups, KMS.
  const dbs = of('AWS::RDS::DBInstance');
  const primary = dbs.find((d) => !d.Properties?.SourceDBInstanceIdentifier)!.Properties!;
  ok(primary.Engine === 'postgres' && primary.MultiAZ === true && primary.BackupRetentionPeriod === 7 &&
    primary.StorageEncrypted === true && primary.KmsKeyId && primary.DBInstanceClass === 'db.r5.xlarge', 'RDS primary');
  ok(dbs.filter((d) => d.Properties?.SourceDBInstanceIdentifier).length === 2, 'two read replicas');

  // DynamoDB: exact tables, keys and GSIs; on demand, PITR, CMK, streams.
  const tables = of('AWS::DynamoDB::Table').map((t) => t.Properties!);
  ok(tables.length === TABLES.length, 'table count');
  for (const spec of TABLES) {
    const t = tables.find((x) => x.TableName === spec.name)!;
    ok(t, `table ${spec.name}`);
    const attr = (name: string) => t.AttributeDefinitions.find((a: any) => a.AttributeName === name)?.AttributeType;
    ok(t.KeySchema[0].AttributeName === spec.pk.name && attr(spec.pk.name) === spec.pk.type, `${spec.name} partition key`);
    ok(!spec.sk || (t.KeySchema[1].AttributeName === spec.sk.name && attr(spec.sk.name) === spec.sk.type), `${spec.name} sort key`);
    ok((t.GlobalSecondaryIndexes ?? []).length === (spec.gsis ?? []).length, `${spec.name} GSI count`);
    for (const g of spec.gsis ?? []) {
      const gi = t.GlobalSecondaryIndexes.find((x: any) => x.IndexName === g.name);
      ok(gi && gi.Projection.ProjectionType === 'ALL' && gi.KeySchema[0].AttributeName === g.pk.name, `${spec.name} GSI ${g.name}`);
    }
    ok(t.BillingMode === 'PAY_PER_REQUEST' && t.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled &&
      t.SSESpecification.SSEType === 'KMS' && t.SSESpecification.KMSMasterKeyId && t.StreamSpecification, `${spec.name} settings`);
  }

  // ElastiCache, OpenSearch, SQS, Secrets.
  const redis = of('AWS::ElastiCache::ReplicationGroup')[0].Properties!;
  ok(redis.NumCacheClusters === 3 && redis.AutomaticFailoverEnabled && redis.MultiAZEnabled, 'Redis 3 nodes with failover');
  ok(of('AWS::OpenSearchService::Domain').length === 1, 'OpenSearch domain');
  const queues = of('AWS::SQS::Queue').map((q) => q.Properties!);
  for (const spec of SERVICES) {
    const q = queues.find((x) => x.QueueName === spec.queue);
    const dlq = queues.find((x) => x.QueueName === `${spec.queue}-dlq`);
    ok(q?.RedrivePolicy?.maxReceiveCount === 5 && q.KmsMasterKeyId && dlq?.MessageRetentionPeriod === 14 * 86400, `queue ${spec.queue}`);
  }
  ok(of('AWS::SecretsManager::Secret').length >= 6, 'secrets');

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
  ok(SERVICES.every((spec) => edgeSecret(spec.name)), 'every service knows the edge token');
  const albOrigins = dist.Origins.filter((o: any) => o.CustomOriginConfig);
  ok(albOrigins.length > 0 && albOrigins.every((o: any) => (o.OriginCustomHeaders ?? []).some((h: any) => h.HeaderName === 'X-Shop-Edge')),
    'CloudFront sends the edge token to the ALB');
  const integrations = of('AWS::ApiGateway::Method').map((m) => m.Properties!.Integration).filter((i: any) => i?.Type === 'HTTP_PROXY');
  ok(integrations.length > 0 && integrations.every((i: any) => i.RequestParameters?.['integration.request.header.X-Shop-Edge']),
    'API Gateway sends the edge token on every route');

  // Observability: dashboard, the listed alarms, billing.
  ok(of('AWS::CloudWatch::Dashboard').length === 1, 'dashboard');
  const alarms = [...of('AWS::CloudWatch::Alarm'), ...of('AWS::CloudWatch::CompositeAlarm')].map((a) => a.Properties!.AlarmName);
  for (const name of ['payment-failures', 'database-connectivity', 'order-error-rate', 'order-latency', 'orders-dropped', 'inventory-low-stock', 'reconcile-unrepaired', 'billing']) {
    ok(alarms.includes(`shop-${env}-${name}`), `alarm ${name}`);
  }
  return n;
}

const envs = process.argv.slice(2);
for (const env of envs.length ? envs : ['staging', 'prod']) {
  console.log(`  ${env}: ${check(env)} requirement checks passed`);
}
