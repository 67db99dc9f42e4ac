import * as cdk from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as opensearch from 'aws-cdk-lib/aws-opensearchservice';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EnvConfig, MAX_MESSAGE_BYTES, MAX_RECEIVE_COUNT, SERVICES, ServiceName, TABLES, KeyAttr } from './config';
import { SecurityGroups } from './network-stack';
import { dataKey, logGroup, skipCheckov, title, URL_UNSAFE_CHARACTERS } from './util';

export interface DataStackProps extends cdk.StackProps {
  readonly cfg: EnvConfig;
  readonly vpc: ec2.IVpc;
  readonly securityGroups: SecurityGroups;
  readonly logsKey: kms.IKey;
}

/** A consumer queue and its dead-letter queue. */
export interface ServiceQueue {
  readonly queue: sqs.Queue;
  readonly dlq: sqs.Queue;
}

/** The secrets the services read, injected into their tasks as ECS secrets. */
export interface ServiceSecrets {
  /**
   * `SHOP_DATABASE_URL` of each service that keeps its data in PostgreSQL: its own database on
   * the RDS instance (`shop_user`, `shop_payment`; a service makes its database on first start).
   */
  readonly databaseUrls: Partial<Record<ServiceName, secretsmanager.ISecret>>;
  /** `SHOP_REDIS_URL`: rediss://:token@primary:6379 (every service). */
  readonly redisUrl: secretsmanager.ISecret;
  /** `SHOP_OPENSEARCH_URL`: https://user:password@domain (product). */
  readonly openSearchUrl: secretsmanager.ISecret;
  /** `SHOP_STRIPE_SECRET_KEY`, `SHOP_STRIPE_WEBHOOK_SECRET` (payment). */
  readonly stripeSecretKey: secretsmanager.ISecret;
  readonly stripeWebhookSecret: secretsmanager.ISecret;
}

/**
 * Data: every store of the platform, each encrypted with a customer-managed KMS key.
 * - RDS PostgreSQL (users, payments): db.r5.xlarge, Multi-AZ, 2 read replicas (reporting), 7-day
 *   backups, KMS, TLS forced, IAM auth, Performance Insights, enhanced monitoring, logs exported.
 * - DynamoDB: the 13 tables of the product, inventory and order services, on demand, point-in-time
 *   recovery, streams (new and old images), one customer-managed key per owning service.
 * - ElastiCache Redis (sessions, cart cache): cache.r6g.large × 3 nodes (primary + 2 replicas) across
 *   AZs with automatic failover, TLS + AUTH token, KMS at rest, daily snapshots kept 7 days.
 * - OpenSearch (product search): 3 × r6g.large.search data nodes with 100 GB gp3 each, 3 dedicated
 *   masters, zone awareness over 3 AZs, in the VPC, KMS, node-to-node TLS, HTTPS only, fine-grained
 *   access control, slow/application/audit logs.
 * - SQS: one queue per consuming service, each with a `-dlq` (5 receives, 14 days), KMS.
 * - Secrets Manager: connection URLs and third-party keys.
 */
export class DataStack extends cdk.Stack {
  /** DynamoDB tables by owning service (none for some). */
  readonly tables = {} as Record<ServiceName, dynamodb.Table[]>;
  /** Queue and dead-letter queue by consuming service; a service without a queue has no entry. */
  readonly queues: Partial<Record<ServiceName, ServiceQueue>> = {};
  readonly messagingKey: kms.Key;
  readonly secretsKey: kms.Key;
  readonly secrets: ServiceSecrets;
  readonly database: rds.DatabaseInstance;
  readonly replicas: rds.DatabaseInstanceReadReplica[] = [];
  readonly redis: elasticache.CfnReplicationGroup;
  readonly search: opensearch.CfnDomain;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const { cfg, vpc, securityGroups, logsKey } = props;
    const env = cfg.envName;
    const isolated: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };

    this.secretsKey = dataKey(this, 'SecretsKey', cfg, 'secrets');
    this.messagingKey = dataKey(this, 'MessagingKey', cfg, 'messaging');

    // ---------------------------------------------------------------- RDS PostgreSQL
    const dbKey = dataKey(this, 'DatabaseKey', cfg, 'database');
    const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17_6 });
    const parameterGroup = new rds.ParameterGroup(this, 'DatabaseParameters', {
      engine,
      description: 'shop: TLS only, slow statements logged',
      parameters: {
        'rds.force_ssl': '1',
        log_min_duration_statement: '1000',
        log_connections: '1',
        log_disconnections: '1',
      },
    });
    const monitoringRole = new iam.Role(this, 'DatabaseMonitoringRole', {
      assumedBy: new iam.ServicePrincipal('monitoring.rds.amazonaws.com'),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonRDSEnhancedMonitoringRole')],
    });
    const instanceId = `shop-${env}-postgres`;
    const instanceType = ec2.InstanceType.of(ec2.InstanceClass.R5, ec2.InstanceSize.XLARGE);
    // Log groups for the exported logs exist before the instances, with retention and encryption.
    const dbLogGroups = (id: string, name: string) =>
      ['postgresql', 'upgrade'].map((log) => logGroup(this, `${id}${title(log)}Logs`, `/aws/rds/instance/${name}/${log}`, logsKey));
    const common = {
      instanceType,
      vpc,
      vpcSubnets: isolated,
      securityGroups: [securityGroups.database],
      parameterGroup,
      publiclyAccessible: false,
      iamAuthentication: true,
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: dbKey,
      monitoringInterval: cdk.Duration.seconds(60),
      monitoringRole,
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      autoMinorVersionUpgrade: true,
      caCertificate: rds.CaCertificate.RDS_CA_RSA2048_G1,
      deletionProtection: true,
      copyTagsToSnapshot: true,
      multiAz: true,
    };
    this.database = new rds.DatabaseInstance(this, 'Database', {
      ...common,
      engine,
      instanceIdentifier: instanceId,
      databaseName: 'shop',
      credentials: rds.Credentials.fromGeneratedSecret('shop_admin', {
        secretName: `shop/${env}/rds-master`,
        encryptionKey: this.secretsKey,
        excludeCharacters: URL_UNSAFE_CHARACTERS,
      }),
      allocatedStorage: 200,
      maxAllocatedStorage: 1000,
      storageType: rds.StorageType.GP3,
      storageEncrypted: true,
      storageEncryptionKey: dbKey,
      backupRetention: cdk.Duration.days(7),
      preferredBackupWindow: '03:00-04:00',
      preferredMaintenanceWindow: 'sun:04:30-sun:05:30',
      removalPolicy: cdk.RemovalPolicy.SNAPSHOT,
    });
    for (const lg of dbLogGroups('Database', instanceId)) this.database.node.addDependency(lg);
    // Two read replicas for reporting queries (reference design), each Multi-AZ itself.
    for (const n of [1, 2]) {
      const replicaId = `${instanceId}-replica-${n}`;
      const replica = new rds.DatabaseInstanceReadReplica(this, `DatabaseReplica${n}`, {
        ...common,
        sourceDatabaseInstance: this.database,
        instanceIdentifier: replicaId,
        // Encryption (the source's KMS key) is inherited; CloudFormation refuses StorageEncrypted here.
        removalPolicy: cdk.RemovalPolicy.DESTROY,
      });
      for (const lg of dbLogGroups(`DatabaseReplica${n}`, replicaId)) replica.node.addDependency(lg);
      skipCheckov(
        replica,
        'CKV_AWS_16',
        'Read replica: encrypted with the source instance KMS key by inheritance; CloudFormation rejects StorageEncrypted with SourceDBInstanceIdentifier (cfn-lint E3020)',
      );
      this.replicas.push(replica);
    }

    // ---------------------------------------------------------------- DynamoDB
    for (const spec of SERVICES) {
      this.tables[spec.name] = [];
    }
    const tableKeys: Partial<Record<ServiceName, kms.Key>> = {};
    const attr = (a: KeyAttr): dynamodb.Attribute => ({
      name: a.name,
      type: a.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER,
    });
    for (const spec of TABLES) {
      const key = (tableKeys[spec.owner] ??= dataKey(this, `${title(spec.owner)}TablesKey`, cfg, `${spec.owner}-tables`));
      const table = new dynamodb.Table(this, `Table-${spec.name}`, {
        tableName: spec.name,
        partitionKey: attr(spec.pk),
        sortKey: spec.sk && attr(spec.sk),
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryptionKey: key,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
        deletionProtection: true,
        removalPolicy: cdk.RemovalPolicy.RETAIN,
      });
      for (const gsi of spec.gsis ?? []) {
        table.addGlobalSecondaryIndex({
          indexName: gsi.name,
          partitionKey: attr(gsi.pk),
          sortKey: gsi.sk && attr(gsi.sk),
          projectionType: dynamodb.ProjectionType.ALL,
        });
      }
      cdk.Tags.of(table).add('Service', spec.owner);
      this.tables[spec.owner].push(table);
    }

    // ---------------------------------------------------------------- SQS
    for (const spec of SERVICES) {
      if (!spec.queue) continue;
      const dlq = new sqs.Queue(this, `${title(spec.name)}Dlq`, {
        queueName: `${spec.queue}-dlq`,
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: this.messagingKey,
        retentionPeriod: cdk.Duration.days(14),
        maxMessageSizeBytes: MAX_MESSAGE_BYTES,
        enforceSSL: true,
      });
      const queue = new sqs.Queue(this, `${title(spec.name)}Queue`, {
        queueName: spec.queue,
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: this.messagingKey,
        visibilityTimeout: cdk.Duration.seconds(60),
        retentionPeriod: cdk.Duration.days(4),
        deadLetterQueue: { queue: dlq, maxReceiveCount: MAX_RECEIVE_COUNT },
        maxMessageSizeBytes: MAX_MESSAGE_BYTES,
        enforceSSL: true,
      });
      cdk.Tags.of(queue).add('Service', spec.name);
      cdk.Tags.of(dlq).add('Service', spec.name);
      this.queues[spec.name] = { queue, dlq };
    }

    // ---------------------------------------------------------------- ElastiCache Redis
    const cacheKey = dataKey(this, 'CacheKey', cfg, 'cache');
    const redisAuth = new secretsmanager.Secret(this, 'RedisAuthToken', {
      secretName: `shop/${env}/redis-auth-token`,
      description: 'AUTH token of the ElastiCache Redis replication group',
      encryptionKey: this.secretsKey,
      generateSecretString: { excludePunctuation: true, passwordLength: 64 },
    });
    const cacheSubnets = new elasticache.CfnSubnetGroup(this, 'RedisSubnets', {
      cacheSubnetGroupName: `shop-${env}-redis`,
      description: 'shop Redis: isolated data subnets',
      subnetIds: vpc.selectSubnets(isolated).subnetIds,
    });
    const redisSlowLog = logGroup(this, 'RedisSlowLogs', `/shop/${env}/redis/slow-log`, logsKey);
    const redisEngineLog = logGroup(this, 'RedisEngineLogs', `/shop/${env}/redis/engine-log`, logsKey);
    // Keys that guard security live here too (session revocations, sign-in throttles, claims): under
    // memory pressure a write must fail rather than evict one of them (the default volatile-lru
    // would drop revocation markers, which carry a TTL).
    const redisParameters = new elasticache.CfnParameterGroup(this, 'RedisParameters', {
      cacheParameterGroupFamily: 'redis7',
      description: 'shop Redis: never evict (security keys live here)',
      properties: { 'maxmemory-policy': 'noeviction' },
    });
    this.redis = new elasticache.CfnReplicationGroup(this, 'Redis', {
      replicationGroupId: `shop-${env}-redis`,
      replicationGroupDescription: 'shop sessions and cache',
      engine: 'redis',
      engineVersion: '7.1',
      cacheNodeType: 'cache.r6g.large',
      numCacheClusters: 3,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      port: 6379,
      cacheSubnetGroupName: cacheSubnets.ref,
      cacheParameterGroupName: redisParameters.ref,
      securityGroupIds: [securityGroups.cache.securityGroupId],
      atRestEncryptionEnabled: true,
      kmsKeyId: cacheKey.keyArn,
      transitEncryptionEnabled: true,
      authToken: redisAuth.secretValue.unsafeUnwrap(),
      snapshotRetentionLimit: 7,
      snapshotWindow: '02:00-03:00',
      preferredMaintenanceWindow: 'sun:05:30-sun:06:30',
      autoMinorVersionUpgrade: true,
      logDeliveryConfigurations: [
        {
          destinationType: 'cloudwatch-logs',
          logFormat: 'json',
          logType: 'slow-log',
          destinationDetails: { cloudWatchLogsDetails: { logGroup: redisSlowLog.logGroupName } },
        },
        {
          destinationType: 'cloudwatch-logs',
          logFormat: 'json',
          logType: 'engine-log',
          destinationDetails: { cloudWatchLogsDetails: { logGroup: redisEngineLog.logGroupName } },
        },
      ],
    });

    // ---------------------------------------------------------------- OpenSearch
    const searchKey = dataKey(this, 'SearchKey', cfg, 'search');
    const searchDomainName = `shop-${env}-search`;
    const searchMaster = new secretsmanager.Secret(this, 'SearchMasterUser', {
      secretName: `shop/${env}/opensearch-master`,
      description: 'Fine-grained access control master user of the OpenSearch domain',
      encryptionKey: this.secretsKey,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ username: 'shop' }),
        generateStringKey: 'password',
        excludeCharacters: URL_UNSAFE_CHARACTERS,
        requireEachIncludedType: true,
        passwordLength: 32,
      },
    });
    const searchLogs: Record<string, logs.LogGroup> = {
      SEARCH_SLOW_LOGS: logGroup(this, 'SearchSlowLogs', `/shop/${env}/opensearch/search-slow`, logsKey),
      INDEX_SLOW_LOGS: logGroup(this, 'IndexSlowLogs', `/shop/${env}/opensearch/index-slow`, logsKey),
      ES_APPLICATION_LOGS: logGroup(this, 'SearchAppLogs', `/shop/${env}/opensearch/application`, logsKey),
      AUDIT_LOGS: logGroup(this, 'SearchAuditLogs', `/shop/${env}/opensearch/audit`, logsKey),
    };
    const searchLogsPolicy = new logs.CfnResourcePolicy(this, 'SearchLogsPolicy', {
      policyName: `shop-${env}-opensearch-logs`,
      policyDocument: cdk.Stack.of(this).toJsonString({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'es.amazonaws.com' },
            Action: ['logs:PutLogEvents', 'logs:CreateLogStream'],
            Resource: Object.values(searchLogs).map((lg) => lg.logGroupArn),
            Condition: { StringEquals: { 'aws:SourceAccount': cfg.account } },
          },
        ],
      }),
    });
    const dataSubnetIds = vpc.selectSubnets(isolated).subnetIds;
    this.search = new opensearch.CfnDomain(this, 'Search', {
      domainName: searchDomainName,
      engineVersion: 'OpenSearch_2.19',
      clusterConfig: {
        instanceType: 'r6g.large.search',
        instanceCount: 3,
        dedicatedMasterEnabled: true,
        dedicatedMasterType: 'm6g.large.search',
        dedicatedMasterCount: 3,
        zoneAwarenessEnabled: true,
        zoneAwarenessConfig: { availabilityZoneCount: 3 },
      },
      ebsOptions: { ebsEnabled: true, volumeType: 'gp3', volumeSize: 100 },
      vpcOptions: { subnetIds: dataSubnetIds, securityGroupIds: [securityGroups.search.securityGroupId] },
      encryptionAtRestOptions: { enabled: true, kmsKeyId: searchKey.keyId },
      nodeToNodeEncryptionOptions: { enabled: true },
      domainEndpointOptions: { enforceHttps: true, tlsSecurityPolicy: 'Policy-Min-TLS-1-2-PFS-2023-10' },
      // Fine-grained access control with the internal user database: the product service signs in
      // with HTTP basic auth (SHOP_OPENSEARCH_URL carries user:password@), which the Rust client
      // supports without SigV4. The resource policy lets requests reach FGAC, which authenticates
      // them; the security group admits only the product service.
      advancedSecurityOptions: {
        enabled: true,
        internalUserDatabaseEnabled: true,
        masterUserOptions: {
          masterUserName: searchMaster.secretValueFromJson('username').unsafeUnwrap(),
          masterUserPassword: searchMaster.secretValueFromJson('password').unsafeUnwrap(),
        },
      },
      accessPolicies: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { AWS: '*' },
            Action: 'es:ESHttp*',
            Resource: `arn:aws:es:${cfg.region}:${cfg.account}:domain/${searchDomainName}/*`,
          },
        ],
      },
      logPublishingOptions: Object.fromEntries(
        Object.entries(searchLogs).map(([kind, lg]) => [kind, { cloudWatchLogsLogGroupArn: lg.logGroupArn, enabled: true }]),
      ),
      softwareUpdateOptions: { autoSoftwareUpdateEnabled: true },
    });
    this.search.node.addDependency(searchLogsPolicy);
    cdk.Tags.of(this.search).add('Service', 'product');

    // ---------------------------------------------------------------- Secrets
    const master = this.database.secret!;
    const databaseUrl = (service: ServiceName) =>
      new secretsmanager.Secret(this, `${title(service)}DatabaseUrl`, {
        secretName: `shop/${env}/${service}-database-url`,
        description: `SHOP_DATABASE_URL of the ${service} service: its own database on RDS PostgreSQL, TLS required`,
        encryptionKey: this.secretsKey,
        secretStringValue: cdk.SecretValue.unsafePlainText(
          cdk.Fn.join('', [
            'postgres://',
            master.secretValueFromJson('username').unsafeUnwrap(),
            ':',
            master.secretValueFromJson('password').unsafeUnwrap(),
            '@',
            this.database.dbInstanceEndpointAddress,
            ':',
            this.database.dbInstanceEndpointPort,
            `/shop_${service}?sslmode=require`,
          ]),
        ),
      });
    const databaseUrls: Partial<Record<ServiceName, secretsmanager.ISecret>> = Object.fromEntries(
      SERVICES.filter((spec) => spec.usesDatabase).map((spec) => [spec.name, databaseUrl(spec.name)]),
    );
    const redisUrl = new secretsmanager.Secret(this, 'RedisUrl', {
      secretName: `shop/${env}/redis-url`,
      description: 'SHOP_REDIS_URL of every service (TLS, AUTH token)',
      encryptionKey: this.secretsKey,
      secretStringValue: cdk.SecretValue.unsafePlainText(
        cdk.Fn.join('', [
          'rediss://:',
          redisAuth.secretValue.unsafeUnwrap(),
          '@',
          this.redis.attrPrimaryEndPointAddress,
          ':',
          this.redis.attrPrimaryEndPointPort,
        ]),
      ),
    });
    const openSearchUrl = new secretsmanager.Secret(this, 'OpenSearchUrl', {
      secretName: `shop/${env}/opensearch-url`,
      description: 'SHOP_OPENSEARCH_URL of the product service (HTTPS, basic auth)',
      encryptionKey: this.secretsKey,
      secretStringValue: cdk.SecretValue.unsafePlainText(
        cdk.Fn.join('', [
          'https://',
          searchMaster.secretValueFromJson('username').unsafeUnwrap(),
          ':',
          searchMaster.secretValueFromJson('password').unsafeUnwrap(),
          '@',
          this.search.attrDomainEndpoint,
        ]),
      ),
    });
    // Third-party and key material: made with a random placeholder, replaced by the operator with
    // `aws secretsmanager put-secret-value` before the first deploy of the services (README).
    const placeholder = (id: string, name: string, description: string) =>
      new secretsmanager.Secret(this, id, {
        secretName: `shop/${env}/${name}`,
        description: `${description} (set the real value after the first deploy)`,
        encryptionKey: this.secretsKey,
        generateSecretString: { excludePunctuation: true, passwordLength: 48 },
      });
    this.secrets = {
      databaseUrls,
      redisUrl,
      openSearchUrl,
      stripeSecretKey: placeholder('StripeSecretKey', 'stripe-secret-key', 'SHOP_STRIPE_SECRET_KEY: Stripe secret API key'),
      stripeWebhookSecret: placeholder(
        'StripeWebhookSecret',
        'stripe-webhook-secret',
        'SHOP_STRIPE_WEBHOOK_SECRET: Stripe webhook signing secret',
      ),
    };
  }
}
