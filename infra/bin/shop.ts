#!/usr/bin/env node
/**
 * The shop's AWS CDK app.
 *
 *   npx cdk synth  -c env=staging|prod [-c imageTag=<tag>]
 *   npx cdk deploy --all -c env=prod -c imageTag=<git sha>
 *
 * Each environment has a fixed account and region (lib/config.ts), and cdk.json holds their
 * availability zones, so synth needs no AWS credentials and makes no lookups.
 */
import * as cdk from 'aws-cdk-lib';
import { envConfig } from '../lib/config';
import { DataStack } from '../lib/data-stack';
import { EdgeStack } from '../lib/edge-stack';
import { NetworkStack } from '../lib/network-stack';
import { ObservabilityStack } from '../lib/observability-stack';
import { ServicesStack } from '../lib/services-stack';

const app = new cdk.App();
const cfg = envConfig(app.node.tryGetContext('env'));
const imageTag: string = app.node.tryGetContext('imageTag') ?? 'latest';
const env: cdk.Environment = { account: cfg.account, region: cfg.region };
const name = (part: string) => `Shop-${cfg.title}-${part}`;
const common = { env, cfg, terminationProtection: cfg.envName === 'prod' };

// Cost allocation tags on everything (activate Project, Environment, Service and CostCenter as
// cost allocation tags in the Billing console once).
cdk.Tags.of(app).add('Project', 'shop');
cdk.Tags.of(app).add('Environment', cfg.envName);
cdk.Tags.of(app).add('CostCenter', cfg.costCenter);

const network = new NetworkStack(app, name('Network'), {
  ...common,
  description: `shop ${cfg.envName}: VPC, subnets, NAT, VPC endpoints, flow logs, security groups`,
});

const data = new DataStack(app, name('Data'), {
  ...common,
  description: `shop ${cfg.envName}: RDS PostgreSQL, DynamoDB, ElastiCache Redis, OpenSearch, SQS, secrets`,
  vpc: network.vpc,
  securityGroups: network.securityGroups,
  logsKey: network.logsKey,
});

const edge = new EdgeStack(app, name('Edge'), {
  ...common,
  description: `shop ${cfg.envName}: S3, ALB, CloudFront, API Gateway, Cognito, WAF, Route 53`,
  vpc: network.vpc,
  securityGroups: network.securityGroups,
  logsKey: network.logsKey,
  secretsKey: data.secretsKey,
});

const services = new ServicesStack(app, name('Services'), {
  ...common,
  description: `shop ${cfg.envName}: ECS cluster and the six Fargate services, the web tier among them (image tag ${imageTag})`,
  imageTag,
  vpc: network.vpc,
  securityGroups: network.securityGroups,
  logsKey: network.logsKey,
  data,
  listener: edge.httpsListener,
  listenerDefaultTargets: edge.listenerDefaultTargets,
  assetsBucket: edge.assetsBucket,
  assetsKey: edge.contentKey,
  gatewayToken: edge.gatewayToken,
  edgeToken: edge.edgeToken,
  cdnBaseUrl: edge.cdnBaseUrl,
  shopperPool: edge.shopperPool,
});

new ObservabilityStack(app, name('Observability'), {
  ...common,
  description: `shop ${cfg.envName}: CloudWatch dashboard, alarms, billing alarm`,
  data,
  alb: edge.alb,
  api: edge.api,
  distribution: edge.distribution,
  readinessChecks: edge.readinessChecks,
  running: services.running,
});

app.synth();
