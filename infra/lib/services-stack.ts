import * as cdk from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { ECR_REPOSITORY, EnvConfig, SCALING, SERVICES, SERVICE_PORT, ServiceName, ServiceSpec } from './config';
import { DataStack } from './data-stack';
import { GATEWAY_HEADER } from './edge-stack';
import { SecurityGroups } from './network-stack';
import { logGroup, serviceTargetGroup, title } from './util';

export interface ServicesStackProps extends cdk.StackProps {
  readonly cfg: EnvConfig;
  readonly imageTag: string;
  readonly vpc: ec2.IVpc;
  readonly securityGroups: SecurityGroups;
  readonly logsKey: kms.IKey;
  readonly data: DataStack;
  readonly listener: elbv2.IApplicationListener;
  /** The target group of the listener's default action (Edge stack), for the service that answers it. */
  readonly listenerDefaultTargets: elbv2.ApplicationTargetGroup;
  readonly assetsBucket: s3.IBucket;
  readonly assetsKey: kms.IKey;
  readonly gatewayToken: secretsmanager.ISecret;
  /** The token CloudFront and API Gateway send on every request (`X-Shop-Edge`). */
  readonly edgeToken: secretsmanager.ISecret;
  /** `https://<domain>` (CloudFront). */
  readonly cdnBaseUrl: string;
  /** The shoppers' Cognito user pool (issuer URL and app client), for sign-in with its ID tokens. */
  readonly shopperPool: { issuer: string; clientId: string };
}

/** What the Observability stack needs of one running service. */
export interface RunningService {
  readonly spec: ServiceSpec;
  readonly service: ecs.FargateService;
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  readonly logGroup: logs.LogGroup;
}

/**
 * Services: the ECS cluster and one Fargate service per platform service.
 *
 * Each service runs its own binary from the one `shop` image (tag from `-c imageTag=…`) with its
 * reference-design task size and task counts, behind its own ALB target group (`/health` every
 * 30 s, 5 s timeout) and listener rules for its paths, and scales on CPU 70 %, memory 80 % and
 * 1,000 ALB requests per target (plus a scheduled floor over Black Friday / Cyber Monday). The web
 * tier has no path rules: it is the listener's default action, everything the API rules do not
 * take. A task role may touch only what the service owns: its DynamoDB tables, its queue (consume),
 * every queue (send: the routing table is in code; none for a service without a queue), its S3
 * prefix. Secrets reach the task as ECS secrets, and so do the settings kept in Parameter Store.
 */
export class ServicesStack extends cdk.Stack {
  readonly running = {} as Record<ServiceName, RunningService>;
  readonly cluster: ecs.Cluster;

  constructor(scope: Construct, id: string, props: ServicesStackProps) {
    super(scope, id, props);
    const env = props.cfg.envName;

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      clusterName: `shop-${env}`,
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      enableFargateCapacityProviders: true,
      // Service-to-service calls (order → product, inventory) stay inside the VPC.
      defaultCloudMapNamespace: {
        name: `${env}.shop.internal`,
        type: servicediscovery.NamespaceType.DNS_PRIVATE,
        vpc: props.vpc,
        useForServiceConnect: false,
      },
    });
    const repository = ecr.Repository.fromRepositoryName(this, 'Repository', ECR_REPOSITORY);

    SERVICES.forEach((spec, index) => {
      this.running[spec.name] = this.addService(spec, index, repository, props);
    });
  }

  private addService(spec: ServiceSpec, index: number, repository: ecr.IRepository, props: ServicesStackProps): RunningService {
    const { cfg, data } = props;
    const env = cfg.envName;
    const id = title(spec.name);
    const namespace = `${env}.shop.internal`;

    // ------------------------------------------------------------ roles
    const ecsTasks = () =>
      new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          ArnLike: { 'aws:SourceArn': `arn:aws:ecs:${cfg.region}:${cfg.account}:*` },
          StringEquals: { 'aws:SourceAccount': cfg.account },
        },
      });
    const taskRole = new iam.Role(this, `${id}TaskRole`, {
      assumedBy: ecsTasks(),
      description: `shop ${env} ${spec.name} service: what the running service may do`,
    });
    const executionRole = new iam.Role(this, `${id}ExecutionRole`, {
      assumedBy: ecsTasks(),
      description: `shop ${env} ${spec.name} service: image pull, logs, secrets at task start`,
    });

    // Queues: send to all five (the event routing table lives in the code), consume only its own
    // (and its dead letters, which the admin endpoint lists and redrives). A service without a
    // queue (the web tier) publishes and consumes nothing: no queue permissions at all.
    const own = data.queues[spec.name];
    if (own) {
      const allQueues = Object.values(data.queues).flatMap((q) => (q ? [q.queue.queueArn] : []));
      taskRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'SendToEveryQueue',
          actions: ['sqs:SendMessage', 'sqs:GetQueueUrl', 'sqs:GetQueueAttributes'],
          resources: allQueues,
        }),
      );
      taskRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ConsumeOwnQueue',
          actions: [
            'sqs:ReceiveMessage',
            'sqs:DeleteMessage',
            'sqs:ChangeMessageVisibility',
            'sqs:GetQueueUrl',
            'sqs:GetQueueAttributes',
          ],
          resources: [own.queue.queueArn, own.dlq.queueArn],
        }),
      );
      taskRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'RedriveOwnDeadLetters',
          actions: ['sqs:SendMessage'],
          resources: [own.dlq.queueArn],
        }),
      );
      data.messagingKey.grantEncryptDecrypt(taskRole);
    }
    for (const table of data.tables[spec.name]) {
      table.grantReadWriteData(taskRole);
    }
    // Readiness (`/ready`): the object store's check reads the key `_ready` (absent: a 404 needs
    // ListBucket), and the queue's check lists the account's queues.
    taskRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadinessObject',
        actions: ['s3:GetObject'],
        resources: [props.assetsBucket.arnForObjects('_ready')],
      }),
    );
    taskRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadinessList',
        actions: ['s3:ListBucket'],
        resources: [props.assetsBucket.bucketArn],
        conditions: { StringEquals: { 's3:prefix': ['_ready'] } },
      }),
    );
    taskRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadinessQueues',
        actions: ['sqs:ListQueues'],
        resources: [`arn:aws:sqs:${cfg.region}:${cfg.account}:*`],
      }),
    );
    // S3: objects under its own prefix of the assets bucket (presigned image uploads, labels), with
    // the bucket's key only through S3.
    for (const prefix of spec.assetPrefixes) {
      taskRole.addToPolicy(
        new iam.PolicyStatement({
          sid: `Objects${title(prefix.replace(/\W/g, ''))}`,
          actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
          resources: [props.assetsBucket.arnForObjects(`${prefix}*`)],
        }),
      );
      taskRole.addToPolicy(
        new iam.PolicyStatement({
          sid: `List${title(prefix.replace(/\W/g, ''))}`,
          actions: ['s3:ListBucket'],
          resources: [props.assetsBucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } },
        }),
      );
    }
    if (spec.assetPrefixes.length > 0) {
      taskRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'AssetsKeyThroughS3',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [props.assetsKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${cfg.region}.amazonaws.com` } },
        }),
      );
    }

    if (spec.name === 'user') {
      // The mailer: send from the shop's verified domain, and only as its own address.
      taskRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'SendMail',
          actions: ['ses:SendEmail', 'ses:SendRawEmail'],
          resources: [`arn:aws:ses:${cfg.region}:${cfg.account}:identity/${cfg.domainName}`],
          conditions: { StringEquals: { 'ses:FromAddress': mailFrom(cfg) } },
        }),
      );
    }

    // ------------------------------------------------------------ task
    const logs = logGroup(this, `${id}Logs`, `/shop/${env}/${spec.name}`, props.logsKey);
    cdk.Tags.of(logs).add('Service', spec.name);
    const taskDefinition = new ecs.FargateTaskDefinition(this, `${id}Task`, {
      family: `shop-${env}-${spec.name}`,
      cpu: spec.cpu,
      memoryLimitMiB: spec.memoryMiB,
      taskRole,
      executionRole,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      // Writable scratch space on a read-only root filesystem.
      volumes: [{ name: 'data' }, { name: 'tmp' }],
    });

    const environment: Record<string, string> = {
      SHOP_BIND: '0.0.0.0',
      SHOP_PORT: String(SERVICE_PORT),
      // The image's data dir (owned by its unprivileged user), on a task volume: the root
      // filesystem is read-only.
      SHOP_DATA_DIR: '/var/lib/shop',
      SHOP_LOG_FORMAT: 'json',
      // Business metrics as Embedded Metric Format records: the dashboards' and alarms' source.
      SHOP_METRICS_EMF: 'true',
      // A request through the edge reaches a task past two proxies that append to X-Forwarded-For:
      // CloudFront (the viewer) or API Gateway (the caller), then the ALB (the edge's own address).
      // The viewer is the second entry from the right; anything further left is the client's to
      // write. One hop would count every shopper behind one edge as one client (login throttling,
      // rate limits). A request straight to the ALB (api.<domain>) passed one proxy only: without
      // the edge token (SHOP_EDGE_SECRET, below) it is read as such, so it cannot pose as a viewer.
      SHOP_TRUSTED_PROXY_HOPS: '2',
      SHOP_EVENT_BUS: 'sqs',
      SHOP_SQS_QUEUE_PREFIX: 'shop-',
      SHOP_AWS_REGION: cfg.region,
      SHOP_OBJECT_STORE: 's3',
      SHOP_S3_BUCKET: props.assetsBucket.bucketName,
      SHOP_CDN_BASE_URL: props.cdnBaseUrl,
      SHOP_CACHE: 'redis',
      SHOP_STORE_BACKEND: 'dynamodb',
      SHOP_DYNAMODB_TABLE_PREFIX: 'shop-',
      // Per-client limits are WAF's and API Gateway's: behind CloudFront, API Gateway and the ALB
      // the services would see the proxies, not the shoppers.
      SHOP_RATE_LIMIT_ENABLED: 'false',
    };
    // Secrets are referenced by ARN (not the Data stack's objects) so that the read grant lands
    // in this stack's execution-role policy instead of the Data stack's key policy; the execution
    // role may decrypt with the secrets key only through Secrets Manager.
    const secretRef = (name: string, secret: secretsmanager.ISecret) =>
      ecs.Secret.fromSecretsManager(secretsmanager.Secret.fromSecretCompleteArn(this, `${id}${name}`, secret.secretArn));
    executionRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DecryptSecretsAtTaskStart',
        actions: ['kms:Decrypt'],
        resources: [data.secretsKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${cfg.region}.amazonaws.com` } },
      }),
    );
    const secrets: Record<string, ecs.Secret> = {
      SHOP_REDIS_URL: secretRef('RedisUrl', data.secrets.redisUrl),
      SHOP_EDGE_SECRET: secretRef('EdgeSecret', props.edgeToken),
    };
    // Service discovery; the user service's URL also gives the others its JWKS
    // (`/.well-known/jwks.json`) inside the VPC.
    for (const callee of spec.calls) {
      environment[`SHOP_${callee.toUpperCase()}_URL`] = `http://${callee}.${namespace}:${SERVICE_PORT}`;
    }
    if (spec.usesDatabase) {
      const own = data.secrets.databaseUrls[spec.name];
      if (!own) throw new Error(`${spec.name} uses the database but has no database URL secret`);
      secrets.SHOP_DATABASE_URL = secretRef('DatabaseUrl', own);
    }
    switch (spec.name) {
      // The user service keeps its token signing keys in its own database (the first task makes
      // the first key); SHOP_JWT_PRIVATE_KEYS stays for keys set by hand.
      case 'user':
        // Emails through SES, from the domain the edge stack verifies there.
        environment.SHOP_MAIL_SINK = 'ses';
        environment.SHOP_MAIL_FROM = `Shop <${mailFrom(cfg)}>`;
        // Mobile shoppers sign in to the pool (API Gateway wants its tokens), then trade its ID
        // token for the shop's at POST /v1/auth/cognito.
        environment.SHOP_COGNITO_ISSUER = props.shopperPool.issuer;
        environment.SHOP_COGNITO_CLIENT_ID = props.shopperPool.clientId;
        break;
      case 'product':
        environment.SHOP_SEARCH_BACKEND = 'opensearch';
        secrets.SHOP_OPENSEARCH_URL = secretRef('OpenSearchUrl', data.secrets.openSearchUrl);
        break;
      case 'payment':
        environment.SHOP_PAYMENT_PROVIDER = 'stripe';
        secrets.SHOP_STRIPE_SECRET_KEY = secretRef('StripeSecretKey', data.secrets.stripeSecretKey);
        secrets.SHOP_STRIPE_WEBHOOK_SECRET = secretRef('StripeWebhookSecret', data.secrets.stripeWebhookSecret);
        break;
      case 'web':
        // The address shoppers reach the storefront on: its cookies are `Secure` on HTTPS, and the
        // sitemaps list absolute URLs on it.
        environment.SHOP_PUBLIC_URL = props.cdnBaseUrl;
        break;
      default:
        break;
    }
    // Settings kept in Parameter Store (`/shop/<env>/<service>/<setting>`): ECS reads them at task
    // start, with the execution role's read grant on exactly these parameters.
    for (const [variable, value] of Object.entries(spec.parameters ?? {})) {
      const setting = variable.replace(/^SHOP_/, '').toLowerCase();
      const parameter = new ssm.StringParameter(this, `${id}${setting.split('_').map(title).join('')}Parameter`, {
        parameterName: `/shop/${env}/${spec.name}/${setting}`,
        stringValue: value,
        description: `${variable} of the ${spec.name} service, read when a task starts`,
        tier: ssm.ParameterTier.STANDARD,
      });
      cdk.Tags.of(parameter).add('Service', spec.name);
      secrets[variable] = ecs.Secret.fromSsmParameter(parameter);
    }
    // Every SHOP_* variable set here goes through the services' own configuration loader after
    // synth (scripts/lint/cdk_env.py, run by scripts/check-deploy): an unknown one fails there.

    const container = taskDefinition.addContainer('app', {
      containerName: spec.name,
      image: ecs.ContainerImage.fromEcrRepository(repository, props.imageTag),
      entryPoint: [`/usr/local/bin/${spec.name}-service`],
      environment,
      secrets,
      portMappings: [{ containerPort: SERVICE_PORT, protocol: ecs.Protocol.TCP, name: 'http' }],
      logging: ecs.LogDrivers.awsLogs({ logGroup: logs, streamPrefix: spec.name }),
      readonlyRootFilesystem: true,
      essential: true,
      // SHOP_SHUTDOWN_GRACE_MS is 20 s: give SIGTERM that long, and then some.
      stopTimeout: cdk.Duration.seconds(30),
      ulimits: [{ name: ecs.UlimitName.NOFILE, softLimit: 65536, hardLimit: 65536 }],
    });
    container.addMountPoints(
      { sourceVolume: 'data', containerPath: '/var/lib/shop', readOnly: false },
      { sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false },
    );

    // ------------------------------------------------------------ service
    // The SGs (and every rule between them) belong to the Network stack; imported read-only here so
    // that no automatic rule lands in another stack.
    const securityGroup = ec2.SecurityGroup.fromSecurityGroupId(
      this,
      `${id}SgRef`,
      props.securityGroups.services[spec.name].securityGroupId,
      { mutable: false, allowAllOutbound: false },
    );
    const service = new ecs.FargateService(this, `${id}Service`, {
      serviceName: `shop-${spec.name}`,
      cluster: this.cluster,
      taskDefinition,
      desiredCount: spec.minTasks,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      securityGroups: [securityGroup],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      assignPublicIp: false,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
      enableECSManagedTags: true,
      healthCheckGracePeriod: cdk.Duration.seconds(60),
      cloudMapOptions: { name: spec.name, dnsRecordType: servicediscovery.DnsRecordType.A, dnsTtl: cdk.Duration.seconds(10) },
    });

    // ------------------------------------------------------------ load balancing
    // The service that answers the listener's default action uses the Edge stack's target group
    // (the listener names it, and the Edge stack deploys first); every other one has its own here.
    const targetGroup = spec.listenerDefault
      ? props.listenerDefaultTargets
      : serviceTargetGroup(this, `${id}Targets`, cfg, spec.name, props.vpc);
    service.attachToApplicationTargetGroup(targetGroup);

    const priority = 100 * (index + 1);
    if (spec.publicPaths.length > 0) {
      new elbv2.ApplicationListenerRule(this, `${id}PublicRule`, {
        listener: props.listener,
        priority,
        conditions: [elbv2.ListenerCondition.pathPatterns(spec.publicPaths)],
        targetGroups: [targetGroup],
      });
    }
    // Admin routes only with the token API Gateway adds (the IAM-authorized path); without it the
    // request falls through to the listener's default, the web tier, which answers not found.
    if (spec.adminPaths.length > 0) {
      new elbv2.ApplicationListenerRule(this, `${id}AdminRule`, {
        listener: props.listener,
        priority: priority + 1,
        conditions: [
          elbv2.ListenerCondition.pathPatterns(spec.adminPaths),
          elbv2.ListenerCondition.httpHeader(GATEWAY_HEADER, [props.gatewayToken.secretValue.unsafeUnwrap()]),
        ],
        targetGroups: [targetGroup],
      });
    }
    // `/_ready/<service>` → the service's `/ready`: what the Route 53 health checks call.
    const readyRule = new elbv2.ApplicationListenerRule(this, `${id}ReadyRule`, {
      listener: props.listener,
      priority: priority + 2,
      conditions: [elbv2.ListenerCondition.pathPatterns([`/_ready/${spec.name}`])],
      targetGroups: [targetGroup],
    });
    (readyRule.node.defaultChild as elbv2.CfnListenerRule).addPropertyOverride('Transforms', [
      { Type: 'url-rewrite', UrlRewriteConfig: { Rewrites: [{ Regex: `^/_ready/${spec.name}$`, Replace: '/ready' }] } },
    ]);

    // ------------------------------------------------------------ auto scaling
    const scaling = service.autoScaleTaskCount({ minCapacity: spec.minTasks, maxCapacity: spec.maxTasks });
    const cooldowns = { scaleInCooldown: cdk.Duration.minutes(5), scaleOutCooldown: cdk.Duration.minutes(1) };
    scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: SCALING.cpuPercent, ...cooldowns });
    scaling.scaleOnMemoryUtilization('Memory', { targetUtilizationPercent: SCALING.memoryPercent, ...cooldowns });
    scaling.scaleOnRequestCount('AlbRequests', {
      requestsPerTarget: SCALING.albRequestsPerTarget,
      targetGroup,
      ...cooldowns,
    });
    // Scheduled floor for the year's peak (reference: "Scale up before known traffic peaks, Black
    // Friday preparation"): from Thanksgiving evening to the first Tuesday of December, at least
    // half the maximum.
    const peakFloor = Math.max(spec.minTasks, Math.ceil(spec.maxTasks / 2));
    scaling.scaleOnSchedule('BlackFridayFloor', {
      schedule: appscaling.Schedule.cron({ minute: '0', hour: '18', month: '11', weekDay: 'THU#4' }),
      timeZone: cdk.TimeZone.AMERICA_NEW_YORK,
      minCapacity: peakFloor,
      maxCapacity: spec.maxTasks,
    });
    scaling.scaleOnSchedule('BlackFridayEnd', {
      schedule: appscaling.Schedule.cron({ minute: '0', hour: '6', month: '12', weekDay: 'TUE#1' }),
      timeZone: cdk.TimeZone.AMERICA_NEW_YORK,
      minCapacity: spec.minTasks,
      maxCapacity: spec.maxTasks,
    });

    for (const c of [taskDefinition, service, taskRole, executionRole]) {
      cdk.Tags.of(c).add('Service', spec.name);
    }
    return { spec, service, targetGroup, logGroup: logs };
  }
}

/** The address the shop's emails come from. */
export function mailFrom(cfg: EnvConfig): string {
  return `no-reply@${cfg.domainName}`;
}
