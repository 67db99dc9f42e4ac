import { RetentionDays } from 'aws-cdk-lib/aws-logs';

/**
 * Everything the stacks need to know about an environment and about the platform, in one place.
 *
 * The numbers here come from the reference architecture (task sizes, task counts, instance
 * classes, retention periods) and from the services themselves (paths, tables, queues, variables).
 * Both environments get the reference design's shape (Multi-AZ, 2 read replicas, 3 cache nodes, …):
 * staging is a full-size rehearsal of prod, in its own account.
 */

/** The environments this app can synthesize (`-c env=staging|prod`). */
export type EnvName = 'staging' | 'prod';

/** The six services (the five behind the API and the web tier); each runs its own binary from the one `shop` image. */
export type ServiceName = 'user' | 'product' | 'order' | 'payment' | 'inventory' | 'web';

export interface DisasterRecoveryTarget {
  /** The passive region the Route 53 failover records send traffic to. */
  readonly region: string;
  /** DNS name of the DR region's ALB (output of the DR deployment; a placeholder until it exists). */
  readonly albDnsName: string;
  /** Canonical hosted zone id of ALBs in the DR region (fixed per region by ELB). */
  readonly albCanonicalHostedZoneId: string;
}

export interface EnvConfig {
  readonly envName: EnvName;
  /** Title-case name used in stack names: `Shop-Staging-Network`. */
  readonly title: string;
  /** Fixed account and region: synth never asks AWS for them. */
  readonly account: string;
  readonly region: string;
  /**
   * The public DNS zone of the environment (must already exist in the account: the app imports it
   * by id and never looks it up). `<domain>` is the shop (CloudFront), `api.<domain>` the ALB,
   * `gateway.<domain>` API Gateway.
   */
  readonly domainName: string;
  readonly hostedZoneId: string;
  readonly vpcCidr: string;
  /** NAT gateways (one per AZ in prod for AZ independence; tasks need egress for Stripe). */
  readonly natGateways: number;
  /** Value of the `CostCenter` cost allocation tag. */
  readonly costCenter: string;
  /** Where alarm notifications go (SNS email subscription). */
  readonly alarmEmail: string;
  /** Monthly AWS bill (USD, estimated charges) above which the billing alarm fires. */
  readonly billingAlarmUsd: number;
  /** Requests per 5 minutes one client IP may send to `/api/*` before WAF blocks it. */
  readonly wafApiRateLimitPer5Min: number;
  /**
   * The passive region's ALB, the Route 53 failover target of `api.<domain>`. The values here are
   * placeholders: set them to the DR region's ALB before the first deploy (Route 53 refuses an
   * alias to a load balancer that does not exist).
   */
  readonly dr: DisasterRecoveryTarget;
}

const ALB_ZONE_US_WEST_2 = 'Z1H1FL5HABSF5';

export const ENVIRONMENTS: Record<EnvName, EnvConfig> = {
  staging: {
    envName: 'staging',
    title: 'Staging',
    account: '111111111111',
    region: 'us-east-1',
    domainName: 'staging.shop.example.com',
    hostedZoneId: 'Z0STAGINGSHOPEXAMPLE',
    vpcCidr: '10.20.0.0/16',
    natGateways: 1,
    costCenter: 'shop-staging',
    alarmEmail: 'shop-oncall-staging@example.com',
    billingAlarmUsd: 5000,
    wafApiRateLimitPer5Min: 3000,
    dr: {
      region: 'us-west-2',
      albDnsName: 'shop-staging-dr-alb-0000000000.us-west-2.elb.amazonaws.com',
      albCanonicalHostedZoneId: ALB_ZONE_US_WEST_2,
    },
  },
  prod: {
    envName: 'prod',
    title: 'Prod',
    account: '222222222222',
    region: 'us-east-1',
    domainName: 'shop.example.com',
    hostedZoneId: 'Z0PRODSHOPEXAMPLE000',
    vpcCidr: '10.10.0.0/16',
    natGateways: 3,
    costCenter: 'shop-prod',
    alarmEmail: 'shop-oncall@example.com',
    billingAlarmUsd: 25000,
    wafApiRateLimitPer5Min: 3000,
    dr: {
      region: 'us-west-2',
      albDnsName: 'shop-prod-dr-alb-0000000000.us-west-2.elb.amazonaws.com',
      albCanonicalHostedZoneId: ALB_ZONE_US_WEST_2,
    },
  },
};

/** Looks up the environment named by `-c env=…` (default staging); an unknown name is an error. */
export function envConfig(name: string | undefined): EnvConfig {
  const key = (name ?? 'staging') as EnvName;
  const cfg = ENVIRONMENTS[key];
  if (!cfg) {
    throw new Error(`unknown environment "${name}": use -c env=${Object.keys(ENVIRONMENTS).join('|')}`);
  }
  return cfg;
}

/** Port every service listens on (`SHOP_PORT`). */
export const SERVICE_PORT = 8080;

/** ECR repository holding the one image with every binary. */
export const ECR_REPOSITORY = 'shop';

/** Metric namespace of the services' Embedded Metric Format records. */
export const METRIC_NAMESPACE = 'Shop';

export interface ServiceSpec {
  readonly name: ServiceName;
  /** Fargate task size (CPU units, MiB). */
  readonly cpu: number;
  readonly memoryMiB: number;
  /** Auto scaling bounds (desired count starts at the minimum). */
  readonly minTasks: number;
  readonly maxTasks: number;
  /** Where the number comes from, for the README and reviewers. */
  readonly sizing: string;
  /** Shopper path patterns routed to it by the ALB (at most 3: ALB allows 5 values a rule). */
  readonly publicPaths: string[];
  /** Admin path patterns (`/admin/*`). */
  readonly adminPaths: string[];
  /**
   * Answers every request no other service's rule takes: the ALB listener's default action
   * forwards to its target group, which the Edge stack makes with the listener. One service only.
   */
  readonly listenerDefault?: boolean;
  /**
   * The SQS queue it consumes (`shop-<name>`). A service without one takes no part in the events:
   * it gets no queue, and its task role may neither send nor receive.
   */
  readonly queue?: string;
  /** Keeps data in RDS PostgreSQL (`SHOP_DATABASE_URL`). */
  readonly usesDatabase: boolean;
  /** DynamoDB tables it owns (names exactly as the services use them). */
  readonly tables: string[];
  /** Other services it calls over HTTP (service discovery names; the API services but user call user for its JWKS). */
  readonly calls: ServiceName[];
  /** S3 prefixes of the assets bucket it writes (presigned uploads, labels). */
  readonly assetPrefixes: string[];
  /**
   * Its own settings kept in SSM Parameter Store, `/shop/<env>/<service>/<setting>` (the setting's
   * name in its section: `SHOP_STORE_NAME` → `store_name`), which ECS reads at task start: the
   * variable and the value the parameter is created with. The parameter is where the value is
   * changed; a new deployment of the service picks it up.
   */
  readonly parameters?: Readonly<Record<string, string>>;
}

export const SERVICES: ServiceSpec[] = [
  {
    name: 'user',
    cpu: 512,
    memoryMiB: 1024,
    minTasks: 2,
    maxTasks: 10,
    sizing: 'reference design: User Service CPU 512, Memory 1 GB, 2-10 tasks',
    publicPaths: ['/v1/auth/*', '/v1/users/*', '/.well-known/*', '/openapi.json'],
    adminPaths: ['/admin/v1/users*'],
    queue: 'shop-user-mail',
    usesDatabase: true,
    tables: [],
    calls: [],
    assetPrefixes: [],
  },
  {
    name: 'product',
    cpu: 512,
    memoryMiB: 1024,
    minTasks: 2,
    maxTasks: 20,
    sizing: 'reference design: Product Service memory 1 GB; catalog reads scale like orders, 2-20 tasks',
    publicPaths: ['/v1/products*', '/v1/categories*', '/v1/skus*'],
    adminPaths: ['/admin/v1/products*', '/admin/v1/categories*'],
    queue: 'shop-product-indexer',
    usesDatabase: false,
    tables: ['shop-products', 'shop-product-ids', 'shop-product-stock', 'shop-categories', 'shop-outbox'],
    calls: ['user'],
    // uploads/: images as uploaded, checked before they are published under images/.
    assetPrefixes: ['images/', 'uploads/'],
  },
  {
    name: 'order',
    cpu: 1024,
    memoryMiB: 2048,
    minTasks: 2,
    maxTasks: 20,
    sizing: 'reference design: Order Service CPU 1024, Memory 2 GB, 2-20 tasks',
    publicPaths: ['/v1/cart*', '/v1/carts*', '/v1/orders*', '/v1/promotions*'],
    adminPaths: ['/admin/v1/orders*', '/admin/v1/promotions*', '/admin/v1/shipping-zones*'],
    queue: 'shop-order-saga',
    usesDatabase: false,
    tables: ['shop-orders', 'shop-order-keys', 'shop-carts', 'shop-order-outbox', 'shop-order-settings'],
    calls: ['user', 'product', 'inventory'],
    assetPrefixes: ['labels/'],
  },
  {
    name: 'payment',
    cpu: 512,
    memoryMiB: 1024,
    minTasks: 2,
    maxTasks: 10,
    sizing: 'reference design: payment isolated (Lambda, 100 reserved); on ECS 512/1 GB, 2-10 tasks (minimum 2 for HA)',
    publicPaths: ['/v1/payments*'],
    adminPaths: ['/admin/v1/payments*'],
    queue: 'shop-payment-commands',
    usesDatabase: true,
    tables: [],
    calls: ['user'],
    assetPrefixes: [],
  },
  {
    name: 'inventory',
    cpu: 512,
    memoryMiB: 1024,
    minTasks: 2,
    maxTasks: 10,
    sizing: 'reference design: Inventory Service on ECS with SQS; sized like the user service, 2-10 tasks',
    publicPaths: ['/v1/inventory*'],
    adminPaths: ['/admin/v1/inventory*', '/admin/v1/reservations*'],
    queue: 'shop-inventory-commands',
    usesDatabase: false,
    tables: ['shop-inventory-stock', 'shop-inventory-reservations', 'shop-inventory-ledger', 'shop-inventory-outbox'],
    calls: ['user'],
    assetPrefixes: [],
  },
  {
    // The storefront: HTML pages rendered on the server from the product, inventory and order
    // services' answers (catalog, stock, carts, checkout, orders), and the content-hashed files
    // under /static/ it serves itself. No tables, no queue, no events.
    name: 'web',
    cpu: 256,
    memoryMiB: 512,
    minTasks: 2,
    maxTasks: 20,
    sizing: 'reference design: Web Application Hosting CPU 256, Memory 512 MB, desired count 2 (minimum for HA); up to 20 tasks (10x the floor, Black Friday)',
    publicPaths: [],
    adminPaths: [],
    listenerDefault: true,
    usesDatabase: false,
    tables: [],
    calls: ['product', 'inventory', 'order'],
    assetPrefixes: [],
    // Reference design: the web tier's environment variables from Parameter Store. The payment
    // service takes cards through Stripe, so the checkout collects them with Stripe's Payment
    // Element: its publishable key (not a secret; set the shop's own after the first deploy).
    parameters: { SHOP_STORE_NAME: 'Shop', SHOP_STRIPE_PUBLISHABLE_KEY: 'pk_live_set_the_shops_key_after_the_first_deploy' },
  },
];

/** Auto scaling targets (reference design, "ECS Auto Scaling: Target Tracking"). */
export const SCALING = {
  cpuPercent: 70,
  memoryPercent: 80,
  albRequestsPerTarget: 1000,
};

/** ALB and target group health checks (reference design). */
export const HEALTH_CHECK = {
  path: '/health',
  intervalSeconds: 30,
  timeoutSeconds: 5,
};

export type AttrType = 'S' | 'N';
export interface KeyAttr {
  readonly name: string;
  readonly type: AttrType;
}
export interface TableSpec {
  readonly name: string;
  readonly owner: ServiceName;
  readonly pk: KeyAttr;
  readonly sk?: KeyAttr;
  /** Global secondary indexes; every one projects ALL attributes. */
  readonly gsis?: { readonly name: string; readonly pk: KeyAttr; readonly sk?: KeyAttr }[];
}

const S = (name: string): KeyAttr => ({ name, type: 'S' });
const N = (name: string): KeyAttr => ({ name, type: 'N' });

/** The DynamoDB tables, names and keys exactly as the services' DynamoDB adapters use them. */
export const TABLES: TableSpec[] = [
  {
    name: 'shop-products',
    owner: 'product',
    pk: S('CategoryID'),
    sk: S('ProductID'),
    gsis: [
      { name: 'by-brand', pk: S('Brand'), sk: S('ProductID') },
      { name: 'by-price', pk: S('CategoryCurrency'), sk: N('Price') },
      { name: 'by-id', pk: N('IdShard'), sk: S('ProductID') },
    ],
  },
  { name: 'shop-product-ids', owner: 'product', pk: S('ProductID') },
  { name: 'shop-product-stock', owner: 'product', pk: S('SKU') },
  { name: 'shop-categories', owner: 'product', pk: S('CategoryID') },
  { name: 'shop-outbox', owner: 'product', pk: S('Service'), sk: N('Seq') },
  { name: 'shop-inventory-stock', owner: 'inventory', pk: S('SKU') },
  {
    name: 'shop-inventory-reservations',
    owner: 'inventory',
    pk: S('OrderID'),
    gsis: [{ name: 'held-by-expiry', pk: N('HeldShard'), sk: N('ExpiresAt') }],
  },
  { name: 'shop-inventory-ledger', owner: 'inventory', pk: S('SKU'), sk: N('Seq') },
  { name: 'shop-inventory-outbox', owner: 'inventory', pk: S('Service'), sk: N('Seq') },
  {
    name: 'shop-orders',
    owner: 'order',
    pk: S('CustomerID'),
    sk: S('OrderKey'),
    gsis: [
      { name: 'by-status-shard', pk: S('StatusShard'), sk: S('OrderID') },
      { name: 'by-deadline', pk: N('DeadlineShard'), sk: N('Deadline') },
    ],
  },
  { name: 'shop-order-keys', owner: 'order', pk: S('Key') },
  {
    name: 'shop-carts',
    owner: 'order',
    pk: S('CartID'),
    gsis: [{ name: 'idle-carts', pk: N('IdleShard'), sk: N('UpdatedAt') }],
  },
  { name: 'shop-order-outbox', owner: 'order', pk: S('Service'), sk: N('Seq') },
  { name: 'shop-order-settings', owner: 'order', pk: S('Kind'), sk: S('Id') },
];

/** SQS: a message that fails this many receives goes to the queue's DLQ. */
export const MAX_RECEIVE_COUNT = 5;

/** The largest message a queue takes: the platform refuses (parks) events above it
 * (platform::events::bus::MAX_MESSAGE_BYTES), so it is set explicitly, not left to SQS's default. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** CloudWatch Logs retention for every log group (PCI DSS 10.5.1: a year of audit history). */
export const LOG_RETENTION_DAYS = RetentionDays.ONE_YEAR;
