import * as cdk from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { EnvConfig, SERVICES, SERVICE_PORT, ServiceName } from './config';
import { logGroup, logsKey, skipCheckov, title } from './util';

export interface NetworkStackProps extends cdk.StackProps {
  readonly cfg: EnvConfig;
}

/** The security groups of the environment, all made here so that no stack edits another's. */
export interface SecurityGroups {
  readonly alb: ec2.ISecurityGroup;
  readonly services: Record<ServiceName, ec2.ISecurityGroup>;
  readonly database: ec2.ISecurityGroup;
  readonly cache: ec2.ISecurityGroup;
  readonly search: ec2.ISecurityGroup;
  readonly endpoints: ec2.ISecurityGroup;
}

/**
 * Network: the VPC across three AZs with
 * - public subnets (ALB, NAT gateways only),
 * - private subnets with NAT egress (the Fargate tasks: Stripe is outside AWS),
 * - isolated subnets without any route out (RDS, ElastiCache, OpenSearch), behind a NACL that
 *   admits only traffic from inside the VPC,
 * - gateway endpoints (S3, DynamoDB) and interface endpoints for every other AWS API the tasks use,
 *   so AWS traffic never crosses the NAT,
 * - VPC flow logs, and
 * - every security group with least-privilege rules between them (ALB → services on 8080,
 *   services → their data stores only).
 */
export class NetworkStack extends cdk.Stack {
  readonly vpc: ec2.Vpc;
  readonly securityGroups: SecurityGroups;
  /** Encrypts every CloudWatch Logs group of the environment. */
  readonly logsKey: kms.Key;

  constructor(scope: Construct, id: string, props: NetworkStackProps) {
    super(scope, id, props);
    const { cfg } = props;

    this.logsKey = logsKey(this, cfg);

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      vpcName: `shop-${cfg.envName}`,
      ipAddresses: ec2.IpAddresses.cidr(cfg.vpcCidr),
      maxAzs: 3,
      natGateways: cfg.natGateways,
      restrictDefaultSecurityGroup: false, // the default SG is never used; no custom-resource Lambda
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'app', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });

    // Flow logs of all traffic, kept a year.
    const flowLogs = logGroup(this, 'FlowLogGroup', `/shop/${cfg.envName}/vpc-flow-logs`, this.logsKey);
    this.vpc.addFlowLog('FlowLogs', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });

    // Data subnets: a NACL admitting only the VPC itself (defence in depth behind the SGs; the
    // subnets have no route out of the VPC anyway).
    const dataNacl = new ec2.NetworkAcl(this, 'DataNacl', {
      vpc: this.vpc,
      networkAclName: `shop-${cfg.envName}-data`,
      subnetSelection: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    });
    dataNacl.addEntry('InFromVpc', {
      ruleNumber: 100,
      cidr: ec2.AclCidr.ipv4(cfg.vpcCidr),
      traffic: ec2.AclTraffic.allTraffic(),
      direction: ec2.TrafficDirection.INGRESS,
      ruleAction: ec2.Action.ALLOW,
    });
    dataNacl.addEntry('OutToVpc', {
      ruleNumber: 100,
      cidr: ec2.AclCidr.ipv4(cfg.vpcCidr),
      traffic: ec2.AclTraffic.allTraffic(),
      direction: ec2.TrafficDirection.EGRESS,
      ruleAction: ec2.Action.ALLOW,
    });

    this.securityGroups = this.makeSecurityGroups(cfg);

    // Interface endpoints for the AWS APIs the tasks call (ECR image pulls, logs, secrets, queues,
    // KMS, STS for the SDK's credential chain, CloudWatch for metrics).
    const interfaceEndpoints: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
      EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
      Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
      Monitoring: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
      SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      Sqs: ec2.InterfaceVpcEndpointAwsService.SQS,
      Kms: ec2.InterfaceVpcEndpointAwsService.KMS,
      Sts: ec2.InterfaceVpcEndpointAwsService.STS,
    };
    for (const [name, service] of Object.entries(interfaceEndpoints)) {
      this.vpc.addInterfaceEndpoint(name, {
        service,
        privateDnsEnabled: true,
        open: false,
        securityGroups: [this.securityGroups.endpoints],
        subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      });
    }
  }

  private makeSecurityGroups(cfg: EnvConfig): SecurityGroups {
    const vpc = this.vpc;
    const sg = (id: string, name: string, description: string) =>
      new ec2.SecurityGroup(this, id, {
        vpc,
        securityGroupName: `shop-${cfg.envName}-${name}`,
        description,
        allowAllOutbound: false,
      });

    const alb = sg('AlbSg', 'alb', 'Internet-facing ALB: HTTPS, and HTTP only to redirect to HTTPS');
    alb.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS from the internet (CloudFront, API Gateway, clients)');
    alb.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'HTTP from the internet, answered with a redirect to HTTPS');
    skipCheckov(
      alb,
      'CKV_AWS_260',
      'Port 80 is open on purpose: the ALB listener on it only answers 301 to HTTPS (required HTTP->HTTPS redirect)',
    );

    const database = sg('DatabaseSg', 'database', 'RDS PostgreSQL: 5432 from the services that own data there');
    const cache = sg('CacheSg', 'cache', 'ElastiCache Redis: 6379 from the services');
    const search = sg('SearchSg', 'search', 'OpenSearch domain: 443 from the product service');
    const endpoints = sg('EndpointsSg', 'endpoints', 'Interface VPC endpoints: 443 from the services');

    const services = {} as Record<ServiceName, ec2.SecurityGroup>;
    for (const spec of SERVICES) {
      services[spec.name] = sg(`${title(spec.name)}Sg`, `svc-${spec.name}`, `${spec.name} service tasks`);
    }

    for (const spec of SERVICES) {
      const s = services[spec.name];
      s.addIngressRule(alb, ec2.Port.tcp(SERVICE_PORT), 'from the ALB');
      alb.addEgressRule(s, ec2.Port.tcp(SERVICE_PORT), `to the ${spec.name} service`);
      // HTTPS out: AWS APIs through the interface endpoints, S3/DynamoDB gateway endpoints (public
      // prefixes), Stripe through the NAT, and the ALB (the user service's JWKS).
      s.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS: AWS APIs, Stripe, the ALB');
      s.addEgressRule(cache, ec2.Port.tcp(6379), 'Redis');
      cache.addIngressRule(s, ec2.Port.tcp(6379), `from the ${spec.name} service`);
      endpoints.addIngressRule(s, ec2.Port.tcp(443), `from the ${spec.name} service`);
      if (spec.usesDatabase) {
        s.addEgressRule(database, ec2.Port.tcp(5432), 'PostgreSQL');
        database.addIngressRule(s, ec2.Port.tcp(5432), `from the ${spec.name} service`);
      }
      for (const callee of spec.calls) {
        s.addEgressRule(services[callee], ec2.Port.tcp(SERVICE_PORT), `calls the ${callee} service`);
        services[callee].addIngressRule(s, ec2.Port.tcp(SERVICE_PORT), `from the ${spec.name} service`);
      }
    }
    services.product.addEgressRule(search, ec2.Port.tcp(443), 'OpenSearch');
    search.addIngressRule(services.product, ec2.Port.tcp(443), 'from the product service');

    return { alb, services, database, cache, search, endpoints };
  }
}
