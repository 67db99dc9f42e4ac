import * as cdk from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IConstruct } from 'constructs';
import { EnvConfig, HEALTH_CHECK, LOG_RETENTION_DAYS, SERVICE_PORT, ServiceName } from './config';

/**
 * Records, on the CloudFormation resource itself, that checkov check `id` does not apply to it and
 * why. checkov reads `Metadata.checkov.skip` from the synthesized template, so the skip is scoped
 * to this one resource (never to the check as a whole) and the reason travels with it. Every use
 * is listed in infra/README.md.
 */
export function skipCheckov(construct: IConstruct, id: string, reason: string): void {
  const res = (construct instanceof cdk.CfnResource ? construct : construct.node.defaultChild) as cdk.CfnResource;
  if (!res) {
    throw new Error(`skipCheckov: ${construct.node.path} has no CloudFormation resource`);
  }
  const current = (res.getMetadata('checkov') as { skip: { id: string; comment: string }[] } | undefined) ?? { skip: [] };
  current.skip.push({ id, comment: reason });
  res.addMetadata('checkov', current);
}

/** A customer-managed KMS key with yearly rotation, kept when its stack is deleted. */
export function dataKey(scope: Construct, id: string, cfg: EnvConfig, purpose: string): kms.Key {
  return new kms.Key(scope, id, {
    alias: `alias/shop-${cfg.envName}-${purpose}`,
    description: `shop ${cfg.envName}: ${purpose}`,
    enableKeyRotation: true,
    removalPolicy: cdk.RemovalPolicy.RETAIN,
  });
}

/**
 * The key that encrypts every CloudWatch Logs group of the environment. CloudWatch Logs may use it
 * only for log groups of this account and region (encryption-context condition).
 */
export function logsKey(scope: Construct, cfg: EnvConfig): kms.Key {
  const key = dataKey(scope, 'LogsKey', cfg, 'logs');
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchLogsUse',
      principals: [new iam.ServicePrincipal(`logs.${cfg.region}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: {
        ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:aws:logs:${cfg.region}:${cfg.account}:log-group:*` },
      },
    }),
  );
  return key;
}

/** A log group kept for a year, encrypted with the environment's logs key. */
export function logGroup(scope: Construct, id: string, name: string, key: kms.IKey): logs.LogGroup {
  return new logs.LogGroup(scope, id, {
    logGroupName: name,
    retention: LOG_RETENTION_DAYS,
    encryptionKey: key,
    removalPolicy: cdk.RemovalPolicy.RETAIN,
  });
}

/**
 * A service's ALB target group (`shop-<env>-<service>`): its tasks by IP on the service port,
 * checked on `/health` every 30 s with a 5 s timeout (reference design), tagged with the service.
 */
export function serviceTargetGroup(scope: Construct, id: string, cfg: EnvConfig, service: ServiceName, vpc: ec2.IVpc): elbv2.ApplicationTargetGroup {
  const targetGroup = new elbv2.ApplicationTargetGroup(scope, id, {
    targetGroupName: `shop-${cfg.envName}-${service}`,
    vpc,
    port: SERVICE_PORT,
    protocol: elbv2.ApplicationProtocol.HTTP,
    targetType: elbv2.TargetType.IP,
    deregistrationDelay: cdk.Duration.seconds(30),
    healthCheck: {
      path: HEALTH_CHECK.path,
      interval: cdk.Duration.seconds(HEALTH_CHECK.intervalSeconds),
      timeout: cdk.Duration.seconds(HEALTH_CHECK.timeoutSeconds),
      healthyThresholdCount: 2,
      unhealthyThresholdCount: 3,
      healthyHttpCodes: '200',
    },
  });
  cdk.Tags.of(targetGroup).add('Service', service);
  return targetGroup;
}

/** Title-cases a service name for construct ids: `user` → `User`. */
export function title(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/**
 * Characters a generated password must not contain so that it can sit unescaped inside a URL's
 * user-info part (`postgres://user:PASSWORD@host`, `rediss://:TOKEN@host`): every ASCII punctuation
 * character except `-`, `_` and `.`.
 */
export const URL_UNSAFE_CHARACTERS = ' !"#$%&\'()*+,/:;<=>?@[\\]^`{|}~';
