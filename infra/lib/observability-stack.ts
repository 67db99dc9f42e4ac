import * as cdk from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { EnvConfig, METRIC_NAMESPACE, SERVICES, ServiceName } from './config';
import { DataStack } from './data-stack';
import { RunningService } from './services-stack';
import { dataKey, title } from './util';

export interface ObservabilityStackProps extends cdk.StackProps {
  readonly cfg: EnvConfig;
  readonly data: DataStack;
  readonly alb: elbv2.IApplicationLoadBalancer;
  readonly api: apigw.RestApi;
  readonly distribution: cloudfront.IDistribution;
  readonly readinessChecks: Record<ServiceName, route53.IHealthCheck>;
  readonly running: Record<ServiceName, RunningService>;
}

/**
 * The business metrics the services emit in CloudWatch Embedded Metric Format (namespace `Shop`,
 * dimension `Service`). This is the contract between the code and the dashboards and alarms below.
 */
export const BUSINESS_METRICS = {
  ordersPlaced: { service: 'order', name: 'OrdersPlaced', meaning: 'an order accepted (POST /v1/orders → pending)' },
  orderRevenue: { service: 'order', name: 'OrderRevenue', meaning: 'order total in minor units, per order placed' },
  cartsCreated: { service: 'order', name: 'CartsCreated', meaning: 'a cart got its first line (guest or shopper)' },
  cartsAbandoned: { service: 'order', name: 'CartsAbandoned', meaning: 'cart.abandoned.v1 emitted (idle cart with lines)' },
  paymentsAuthorized: { service: 'payment', name: 'PaymentsAuthorized', meaning: 'payment.authorized.v1' },
  paymentsFailed: { service: 'payment', name: 'PaymentsFailed', meaning: 'payment.failed.v1 (declines and provider errors)' },
  lowStock: { service: 'inventory', name: 'LowStockEvents', meaning: 'inventory.low_stock.v1 (a SKU fell to its threshold)' },
  orderReconcileRepaired: { service: 'order', name: 'ReconcileRepaired', meaning: 'the order reconciler set an order right (a dead end given a deadline)' },
  orderReconcileUnrepaired: { service: 'order', name: 'ReconcileUnrepaired', meaning: "a settled order's audit found money or stock no command can set right" },
  paymentReconcileRepaired: { service: 'payment', name: 'ReconcileRepaired', meaning: 'the payment reconciler recorded what the provider did (a capture, a lapsed hold, an abandoned authorize)' },
  paymentReconcileUnrepaired: { service: 'payment', name: 'ReconcileUnrepaired', meaning: 'an authorization left open at the provider long after its checkout' },
  userOutboxParked: { service: 'user', name: 'OutboxParked', meaning: 'an event the bus refused for good, parked in the outbox dead-letter table' },
  productOutboxParked: { service: 'product', name: 'OutboxParked', meaning: 'an event the bus refused for good, parked in the outbox dead-letter table' },
  orderOutboxParked: { service: 'order', name: 'OutboxParked', meaning: 'an event the bus refused for good, parked in the outbox dead-letter table' },
  paymentOutboxParked: { service: 'payment', name: 'OutboxParked', meaning: 'an event the bus refused for good, parked in the outbox dead-letter table' },
  inventoryOutboxParked: { service: 'inventory', name: 'OutboxParked', meaning: 'an event the bus refused for good, parked in the outbox dead-letter table' },
} as const;

/**
 * Observability: the environment's CloudWatch dashboard (business and technical metrics), its
 * alarms (critical and business, each to its own SNS topic), and the billing alarm.
 */
export class ObservabilityStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props: ObservabilityStackProps) {
    super(scope, id, props);
    const { cfg, data, alb, api, running } = props;
    const env = cfg.envName;
    if (cfg.region !== 'us-east-1') {
      // AWS/Billing and AWS/Route53 metrics exist only in us-east-1.
      throw new Error('The Observability stack must be in us-east-1 (billing and Route 53 health check metrics)');
    }

    // ------------------------------------------------------------------ topics
    const topicKey = dataKey(this, 'AlarmTopicKey', cfg, 'alarms');
    topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': cfg.account } },
      }),
    );
    const topic = (id: string, name: string) => {
      const t = new sns.Topic(this, id, { topicName: `shop-${env}-${name}`, masterKey: topicKey, enforceSSL: true });
      t.addSubscription(new subscriptions.EmailSubscription(cfg.alarmEmail));
      return t;
    };
    const critical = new actions.SnsAction(topic('CriticalTopic', 'alarms-critical'));
    const business = new actions.SnsAction(topic('BusinessTopic', 'alarms-business'));
    const alarm = (a: cloudwatch.Alarm | cloudwatch.CompositeAlarm, action: actions.SnsAction) => {
      a.addAlarmAction(action);
      if (action === critical) a.addOkAction(action);
      return a;
    };

    // ------------------------------------------------------------------ metrics
    const shop = (metric: { service: string; name: string }, statistic = 'Sum', period = cdk.Duration.minutes(1)) =>
      new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName: metric.name,
        dimensionsMap: { Service: metric.service },
        statistic,
        period,
      });
    const m = BUSINESS_METRICS;
    const hour = cdk.Duration.hours(1);
    const ordersPerMinute = shop(m.ordersPlaced).with({ label: 'Orders / min' });
    const revenue = shop(m.orderRevenue, 'Sum', cdk.Duration.minutes(5)).with({ label: 'Revenue (minor units) / 5 min' });
    const conversion = new cloudwatch.MathExpression({
      expression: '100 * orders / IF(carts > 0, carts, 1)',
      usingMetrics: { orders: shop(m.ordersPlaced, 'Sum', hour), carts: shop(m.cartsCreated, 'Sum', hour) },
      label: 'Conversion (orders / carts, %)',
      period: hour,
    });
    const abandonment = new cloudwatch.MathExpression({
      expression: '100 * abandoned / IF(cartsa > 0, cartsa, 1)',
      usingMetrics: { abandoned: shop(m.cartsAbandoned, 'Sum', hour), cartsa: shop(m.cartsCreated, 'Sum', hour) },
      label: 'Cart abandonment (%)',
      period: hour,
    });
    const fiveMin = cdk.Duration.minutes(5);
    const paymentFailureRate = new cloudwatch.MathExpression({
      expression: '100 * failed / IF(failed + ok > 0, failed + ok, 1)',
      usingMetrics: { failed: shop(m.paymentsFailed, 'Sum', fiveMin), ok: shop(m.paymentsAuthorized, 'Sum', fiveMin) },
      label: 'Payment failures (%)',
      period: fiveMin,
    });

    const errorRate = (r: RunningService) =>
      new cloudwatch.MathExpression({
        expression: `100 * e_${r.spec.name} / IF(r_${r.spec.name} > 0, r_${r.spec.name}, 1)`,
        usingMetrics: {
          [`e_${r.spec.name}`]: r.targetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
            period: cdk.Duration.minutes(1),
          }),
          [`r_${r.spec.name}`]: r.targetGroup.metrics.requestCount({ period: cdk.Duration.minutes(1) }),
        },
        label: `${r.spec.name} 5xx (%)`,
        period: cdk.Duration.minutes(1),
      });
    const latency = (r: RunningService, statistic: string) =>
      r.targetGroup.metrics.targetResponseTime({ statistic, period: cdk.Duration.minutes(1), label: `${r.spec.name} ${statistic}` });

    const redisNodes = [1, 2, 3].map((n) => `shop-${env}-redis-00${n}`);
    const redisMetric = (metricName: string, node: string, statistic = 'Sum') =>
      new cloudwatch.Metric({
        namespace: 'AWS/ElastiCache',
        metricName,
        dimensionsMap: { CacheClusterId: node },
        statistic,
        period: cdk.Duration.minutes(1),
      });
    const hitsAndMisses: Record<string, cloudwatch.IMetric> = {};
    redisNodes.forEach((node, i) => {
      hitsAndMisses[`h${i}`] = redisMetric('CacheHits', node);
      hitsAndMisses[`m${i}`] = redisMetric('CacheMisses', node);
    });
    const cacheHitRate = new cloudwatch.MathExpression({
      expression: '100 * (h0 + h1 + h2) / IF(h0 + h1 + h2 + m0 + m1 + m2 > 0, h0 + h1 + h2 + m0 + m1 + m2, 1)',
      usingMetrics: hitsAndMisses,
      label: 'Cache hit rate (%)',
      period: cdk.Duration.minutes(1),
    });

    const db = data.database;
    const list = Object.values(running);
    const queues = Object.values(data.queues).flatMap((q) => (q ? [q] : []));
    // Table names are fixed (the services' own names), so metrics use them literally.
    const tableName = (t: dynamodb.Table) => t.node.id.replace(/^Table-/, '');
    const allTables = Object.values(data.tables).flat();
    const hotTables = allTables.filter((t) =>
      ['shop-orders', 'shop-carts', 'shop-products', 'shop-inventory-stock', 'shop-inventory-reservations'].includes(tableName(t)),
    );

    // ------------------------------------------------------------------ dashboard
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `shop-${env}`,
      defaultInterval: cdk.Duration.hours(6),
    });
    const graph = (titleText: string, left: cloudwatch.IMetric[], props: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title: titleText, left, width: 8, height: 6, ...props });
    dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `# shop ${env}: business`, width: 24, height: 1 }));
    dashboard.addWidgets(
      new cloudwatch.SingleValueWidget({ title: 'Orders / min', metrics: [ordersPerMinute], width: 6, height: 4, sparkline: true }),
      new cloudwatch.SingleValueWidget({ title: 'Revenue (5 min, minor units)', metrics: [revenue], width: 6, height: 4, sparkline: true }),
      new cloudwatch.SingleValueWidget({ title: 'Conversion (1 h)', metrics: [conversion], width: 6, height: 4 }),
      new cloudwatch.SingleValueWidget({ title: 'Cart abandonment (1 h)', metrics: [abandonment], width: 6, height: 4 }),
    );
    dashboard.addWidgets(
      graph('Orders per minute', [ordersPerMinute]),
      graph('Revenue', [revenue]),
      graph('Conversion and cart abandonment (%)', [conversion, abandonment]),
      graph('Payments', [shop(m.paymentsAuthorized), shop(m.paymentsFailed)], { right: [paymentFailureRate] }),
      graph('Low-stock events', [shop(m.lowStock, 'Sum', fiveMin)]),
      graph('Carts', [shop(m.cartsCreated), shop(m.cartsAbandoned)]),
    );
    dashboard.addWidgets(
      graph(
        'Reconcile: set right / for people (5 min)',
        [shop(m.orderReconcileRepaired, 'Sum', fiveMin), shop(m.paymentReconcileRepaired, 'Sum', fiveMin)],
        { right: [shop(m.orderReconcileUnrepaired, 'Sum', fiveMin), shop(m.paymentReconcileUnrepaired, 'Sum', fiveMin)] },
      ),
    );
    dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `# shop ${env}: technical`, width: 24, height: 1 }));
    dashboard.addWidgets(
      graph('Response time p95 by service (ALB, s)', list.map((r) => latency(r, 'p95'))),
      graph('Response time p99 by service (ALB, s)', list.map((r) => latency(r, 'p99'))),
      graph('Error rate by service (5xx %)', list.map(errorRate)),
      graph('API Gateway latency and errors', [api.metricLatency({ statistic: 'p95' })], {
        right: [api.metricClientError(), api.metricServerError()],
      }),
      graph('Requests by service', list.map((r) => r.targetGroup.metrics.requestCount({ label: r.spec.name }))),
      graph('ECS CPU / memory (%)', list.map((r) => r.service.metricCpuUtilization({ label: `${r.spec.name} cpu` })), {
        right: list.map((r) => r.service.metricMemoryUtilization({ label: `${r.spec.name} mem` })),
      }),
      graph('RDS CPU and connections', [db.metricCPUUtilization()], { right: [db.metricDatabaseConnections()] }),
      graph('RDS latency (s)', [db.metric('ReadLatency', { statistic: 'Average' }), db.metric('WriteLatency', { statistic: 'Average' })]),
      graph('RDS replica lag (s)', data.replicas.map((r, i) => r.metric('ReplicaLag', { statistic: 'Maximum', label: `replica ${i + 1}` }))),
      graph('Cache hit rate (%)', [cacheHitRate], {
        right: redisNodes.map((n) => redisMetric('EngineCPUUtilization', n, 'Average')),
      }),
      graph(
        'DynamoDB latency p99 (ms)',
        hotTables.flatMap((t) =>
          ['GetItem', 'Query', 'TransactWriteItems'].map((op) =>
            t.metricSuccessfulRequestLatency({
              dimensionsMap: { TableName: tableName(t), Operation: op },
              statistic: 'p99',
              label: `${tableName(t)} ${op}`,
            }),
          ),
        ),
      ),
      graph(
        'DynamoDB throttled requests',
        allTables.map((t) =>
          new cloudwatch.Metric({
            namespace: 'AWS/DynamoDB',
            metricName: 'ThrottledRequests',
            dimensionsMap: { TableName: tableName(t) },
            statistic: 'Sum',
            label: tableName(t),
          }),
        ),
      ),
      graph(
        'Queues: oldest message (s)',
        queues.map((q) => q.queue.metricApproximateAgeOfOldestMessage()),
        { right: queues.map((q) => q.dlq.metricApproximateNumberOfMessagesVisible()) },
      ),
      graph('ALB', [alb.metrics.requestCount()], {
        right: [alb.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT), alb.metrics.targetResponseTime({ statistic: 'p99' })],
      }),
      graph('CloudFront error rate (%)', [
        new cloudwatch.Metric({
          namespace: 'AWS/CloudFront',
          metricName: '5xxErrorRate',
          dimensionsMap: { DistributionId: props.distribution.distributionId, Region: 'Global' },
          statistic: 'Average',
        }),
      ]),
      graph('OpenSearch', [
        new cloudwatch.Metric({
          namespace: 'AWS/ES',
          metricName: 'SearchLatency',
          dimensionsMap: { DomainName: data.search.domainName!, ClientId: cfg.account },
          statistic: 'p99',
        }),
      ]),
    );

    // ------------------------------------------------------------------ critical alarms
    alarm(
      paymentFailureRate.createAlarm(this, 'PaymentFailures', {
        alarmName: `shop-${env}-payment-failures`,
        alarmDescription: 'More than 20 % of payment attempts failed over 15 minutes (declines + provider errors)',
        threshold: 20,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      critical,
    );
    const paymentQueue = data.queues.payment;
    if (!paymentQueue) throw new Error('the payment service has no queue: its dead-letter alarm has nothing to watch');
    alarm(
      paymentQueue.dlq.metricApproximateNumberOfMessagesVisible({ period: fiveMin, statistic: 'Maximum' }).createAlarm(this, 'PaymentCommandsDead', {
        alarmName: `shop-${env}-payment-commands-dead-letters`,
        alarmDescription: 'Payment commands failed 5 times and sit in shop-payment-commands-dlq',
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      critical,
    );
    // Money and stock that disagree and that no saga command could set right: people must look
    // (the order's history carries `audit:<rule>`, the log line the rule and the detail).
    alarm(
      new cloudwatch.MathExpression({
        expression: 'FILL(orders, 0) + FILL(payments, 0)',
        usingMetrics: {
          orders: shop(m.orderReconcileUnrepaired, 'Sum', fiveMin),
          payments: shop(m.paymentReconcileUnrepaired, 'Sum', fiveMin),
        },
        label: 'Unrepaired reconcile findings / 5 min',
        period: fiveMin,
      }).createAlarm(this, 'ReconcileUnrepaired', {
        alarmName: `shop-${env}-reconcile-unrepaired`,
        alarmDescription: 'The reconcilers found an order whose money or stock disagree and that no command could set right',
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      critical,
    );
    // An event the bus refused for good (too large, characters a queue does not carry) was parked:
    // its consumers never saw it (`shop events parked` lists it with the reason).
    alarm(
      new cloudwatch.MathExpression({
        expression: 'FILL(u, 0) + FILL(p, 0) + FILL(o, 0) + FILL(pay, 0) + FILL(i, 0)',
        usingMetrics: {
          u: shop(m.userOutboxParked, 'Sum', fiveMin),
          p: shop(m.productOutboxParked, 'Sum', fiveMin),
          o: shop(m.orderOutboxParked, 'Sum', fiveMin),
          pay: shop(m.paymentOutboxParked, 'Sum', fiveMin),
          i: shop(m.inventoryOutboxParked, 'Sum', fiveMin),
        },
        label: 'Outbox events parked / 5 min',
        period: fiveMin,
      }).createAlarm(this, 'OutboxParked', {
        alarmName: `shop-${env}-outbox-parked`,
        alarmDescription: 'The bus refused an event for good and its relay parked it in the outbox dead-letter table',
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      critical,
    );
    // Dead letters of every other queue (the web tier has none).
    for (const spec of SERVICES) {
      const own = data.queues[spec.name];
      if (spec.name === 'payment' || !own) continue;
      const dlq = own.dlq;
      alarm(
        dlq.metricApproximateNumberOfMessagesVisible({ period: fiveMin, statistic: 'Maximum' }).createAlarm(this, `${title(spec.name)}DeadLetters`, {
          alarmName: `shop-${env}-${spec.name}-dead-letters`,
          alarmDescription: `Messages failed 5 times and sit in ${spec.queue}-dlq`,
          threshold: 0,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        critical,
      );
    }

    // Readiness of each service as seen by Route 53 (the web tier's too: the storefront's pages); the
    // user and payment services' readiness is their PostgreSQL connectivity, combined with RDS's own
    // view into "database connectivity".
    const readiness = {} as Record<ServiceName, cloudwatch.Alarm>;
    for (const spec of SERVICES) {
      readiness[spec.name] = new cloudwatch.Metric({
        namespace: 'AWS/Route53',
        metricName: 'HealthCheckStatus',
        dimensionsMap: { HealthCheckId: props.readinessChecks[spec.name].healthCheckId },
        statistic: 'Minimum',
        period: cdk.Duration.minutes(1),
      }).createAlarm(this, `${title(spec.name)}NotReady`, {
        alarmName: `shop-${env}-${spec.name}-not-ready`,
        alarmDescription: `${spec.name} service /ready fails from Route 53 (a dependency does not answer)`,
        threshold: 1,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
      alarm(readiness[spec.name], critical);
    }
    const rdsDown = db
      .metric('DatabaseConnections', { statistic: 'Maximum', period: cdk.Duration.minutes(1) })
      .createAlarm(this, 'DatabaseNoConnections', {
        alarmName: `shop-${env}-database-no-connections`,
        alarmDescription: 'No client holds a connection to RDS PostgreSQL (services cannot reach it)',
        threshold: 1,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    alarm(
      new cloudwatch.CompositeAlarm(this, 'DatabaseConnectivity', {
        compositeAlarmName: `shop-${env}-database-connectivity`,
        alarmDescription: 'PostgreSQL unreachable: the user or payment service is not ready, or RDS has no connections',
        alarmRule: cloudwatch.AlarmRule.anyOf(
          cloudwatch.AlarmRule.fromAlarm(readiness.user, cloudwatch.AlarmState.ALARM),
          cloudwatch.AlarmRule.fromAlarm(readiness.payment, cloudwatch.AlarmState.ALARM),
          cloudwatch.AlarmRule.fromAlarm(rdsDown, cloudwatch.AlarmState.ALARM),
        ),
      }),
      critical,
    );

    // Sustained: above the threshold in 3 of 5 one-minute periods; no data is no alarm.
    const sustained = (metric: cloudwatch.Metric | cloudwatch.MathExpression, id: string, name: string, description: string, threshold: number) =>
      alarm(
        metric.createAlarm(this, id, {
          alarmName: `shop-${env}-${name}`,
          alarmDescription: `${description} (3 of 5 minutes)`,
          threshold,
          evaluationPeriods: 5,
          datapointsToAlarm: 3,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        critical,
      );
    // Every service's 5xx share and p95 at its target group; for the web tier that is the
    // storefront's pages (reference design: page load under 2 seconds).
    for (const r of list) {
      const name = r.spec.name;
      sustained(errorRate(r), `${title(name)}ErrorRate`, `${name}-error-rate`, `${name}: more than 5 % of requests answered 5xx`, 5);
      sustained(latency(r, 'p95'), `${title(name)}Latency`, `${name}-latency`, `${name}: p95 response time above 2 s`, 2);
    }
    const minute = cdk.Duration.minutes(1);
    sustained(
      api.metricServerError({ statistic: 'Average', period: minute }),
      'ApiErrorRate',
      'api-gateway-error-rate',
      'API Gateway: more than 5 % of requests answered 5xx',
      0.05,
    );
    sustained(
      api.metricLatency({ statistic: 'p95', period: minute }),
      'ApiLatency',
      'api-gateway-latency',
      'API Gateway: p95 latency above 2 s',
      2000,
    );

    // ------------------------------------------------------------------ business alarms
    alarm(
      new cloudwatch.AnomalyDetectionAlarm(this, 'OrdersDropped', {
        alarmName: `shop-${env}-orders-dropped`,
        alarmDescription: 'Orders placed fell below the expected band for this time of day and week',
        metric: shop(m.ordersPlaced, 'Sum', fiveMin),
        stdDevs: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_LOWER_THRESHOLD,
        evaluationPeriods: 3,
        // In prod no orders at all for 15 minutes is itself the drop; staging is often idle.
        treatMissingData: env === 'prod' ? cloudwatch.TreatMissingData.BREACHING : cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      business,
    );
    alarm(
      shop(m.lowStock, 'Sum', fiveMin).createAlarm(this, 'LowStock', {
        alarmName: `shop-${env}-inventory-low-stock`,
        alarmDescription: 'SKUs fell to their low-stock threshold (see GET /admin/v1/inventory?low_stock=true)',
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      business,
    );
    alarm(
      abandonment.createAlarm(this, 'CartAbandonment', {
        alarmName: `shop-${env}-cart-abandonment`,
        alarmDescription: 'More than 80 % of carts were abandoned over the last 3 hours',
        threshold: 80,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      business,
    );

    // ------------------------------------------------------------------ billing
    alarm(
      new cloudwatch.Metric({
        namespace: 'AWS/Billing',
        metricName: 'EstimatedCharges',
        dimensionsMap: { Currency: 'USD' },
        statistic: 'Maximum',
        period: cdk.Duration.hours(6),
      }).createAlarm(this, 'Billing', {
        alarmName: `shop-${env}-billing`,
        alarmDescription: `Estimated charges this month above ${cfg.billingAlarmUsd} USD (account ${cfg.account})`,
        threshold: cfg.billingAlarmUsd,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      critical,
    );

    new cdk.CfnOutput(this, 'DashboardUrl', {
      value: `https://${cfg.region}.console.aws.amazon.com/cloudwatch/home?region=${cfg.region}#dashboards:name=shop-${env}`,
    });
  }
}
