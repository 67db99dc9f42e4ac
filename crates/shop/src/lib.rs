//! The whole platform in one process: the five services wired onto one shared infrastructure, as
//! `shop up` runs them and as the end-to-end tests drive them.

use std::sync::Arc;

use anyhow::Context;
use platform::Config;
use platform::infra::{Infra, Service};
use platform::sqlite;

pub mod reconcile;

/// The allocator of every binary of the platform (`shop` and each service's): glibc's keeps a heap
/// for each thread that allocated (tokio's blocking pool runs many) and gives little of it back, so
/// after its first start indexed 100,000 products `shop up` held 370 MB at rest, 240 MB of it freed
/// memory; mimalloc returns freed pages to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every service's embedded schema, by database name.
pub const SERVICES: &[(&str, &[sqlite::Migration])] = &[
    (shop_user::NAME, shop_user::MIGRATIONS),
    (shop_product::NAME, shop_product::MIGRATIONS),
    (shop_order::NAME, shop_order::MIGRATIONS),
    (shop_payment::NAME, shop_payment::MIGRATIONS),
    (shop_inventory::NAME, shop_inventory::MIGRATIONS),
];

/// Applies every service's migrations (and the event queue's) under the data dir; with the
/// DynamoDB store backend, also brings items earlier versions wrote up to date (orders gain the
/// `StatusShard` of the sharded status index). Safe to run again, and while the services run.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    for (name, migrations) in SERVICES {
        let path = config.data_dir.join(format!("{name}.db"));
        let (_, applied) = sqlite::Db::open_migrated(&path, migrations)
            .with_context(|| format!("cannot migrate {}", path.display()))?;
        println!("{name}: {applied} migration(s) applied ({})", path.display());
    }
    let queue = config.data_dir.join("events.db");
    let db = sqlite::Db::open(&queue).with_context(|| format!("cannot open {}", queue.display()))?;
    let applied = db.migrate(platform::events::sqlite::QUEUE_MIGRATIONS)?;
    println!("events: {applied} migration(s) applied ({})", queue.display());
    if config.store_backend == platform::config::StoreBackend::Dynamodb {
        let sdk = platform::aws::sdk_config(config).await;
        let orders = shop_order::store::dynamodb::DynamoOrderStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.dynamodb_table_prefix,
        );
        let updated = orders.backfill_status_shards().await.context("backfilling the orders' status shards")?;
        println!("dynamodb: {updated} order(s) given their status shard");
    }
    Ok(())
}

/// Makes, on an AWS emulator (moto or LocalStack at `SHOP_AWS_ENDPOINT_URL`), every resource the
/// AWS adapters expect to find: the DynamoDB tables and indexes of the catalog, the inventory and
/// the order service; each consumer's SQS queue with its dead-letter queue; the S3 bucket; the SES
/// identity of `SHOP_MAIL_FROM` when mail goes through SES. What
/// exists is left as it is, so it can run on every start of the local stack. On AWS the CDK app
/// makes all of these, and this refuses to run.
pub async fn provision(config: &Config) -> anyhow::Result<()> {
    let endpoint = config.aws_endpoint_url.clone().context(
        "provision makes resources on an emulator only (SHOP_AWS_ENDPOINT_URL); on AWS the CDK app makes them",
    )?;
    let sdk = platform::aws::sdk_config(config).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let prefix = &config.dynamodb_table_prefix;
    shop_product::store::dynamodb::DynamoCatalogStore::new(dynamodb.clone(), prefix)
        .create_tables()
        .await
        .context("the catalog's tables")?;
    shop_inventory::store::dynamodb::DynamoInventoryStore::new(dynamodb.clone(), prefix)
        .create_tables()
        .await
        .context("the inventory's tables")?;
    shop_order::store::dynamodb::DynamoOrderStore::new(dynamodb, prefix)
        .create_tables()
        .await
        .context("the order service's tables")?;
    println!("dynamodb: tables ready (prefix {prefix})");
    let bus = platform::events::sqs::SqsBus::new(
        platform::aws::sqs_client(&sdk),
        config.sqs_queue_prefix.clone(),
        routing(),
        config.sqs_wait_seconds,
    );
    let queues: Vec<&str> = SUBSCRIPTIONS.iter().flat_map(|s| s.iter().map(|s| s.queue)).collect();
    for queue in &queues {
        platform::events::EventBus::ensure_queue(&bus, queue).await.with_context(|| format!("queue {queue}"))?;
    }
    println!("sqs: {} queues ready, each with its dead-letter queue", queues.len());
    if let Some(bucket) = &config.s3_bucket {
        platform::objects::s3::create_bucket_on_emulator(&endpoint, bucket).await?;
        println!("s3: bucket {bucket} ready");
    }
    let user: shop_user::settings::Settings = config.section()?;
    if user.mail_sink == shop_user::settings::MailBackend::Ses {
        shop_user::app::mail::SesSink::verify_on_emulator(&sdk, &user.mail_from).await?;
        println!("ses: {} verified", shop_user::app::mail::address_of(&user.mail_from));
    }
    Ok(())
}

/// The settings of the five services, which every process of the `shop` binary runs or
/// administers.
pub const SETTINGS: [platform::config::Section; 6] = [
    shop_user::settings::SECTION,
    shop_product::settings::SECTION,
    shop_order::settings::SECTION,
    shop_payment::settings::SECTION,
    shop_inventory::settings::SECTION,
    shop_web::settings::SECTION,
];

/// What the settings of one process running every service must agree on: taking cards through
/// Stripe (`SHOP_PAYMENT_PROVIDER=stripe`) needs the storefront's publishable key, as its checkout
/// collects cards with Stripe's Payment Element. A refusal names the variable.
pub fn check_together(config: &Config) -> anyhow::Result<()> {
    let payment: shop_payment::settings::Settings = config.section()?;
    let web: shop_web::settings::Settings = config.section()?;
    if payment.payment_provider == shop_payment::settings::ProviderChoice::Stripe && web.card_key().is_none() {
        anyhow::bail!(
            "SHOP_STRIPE_PUBLISHABLE_KEY is required when SHOP_PAYMENT_PROVIDER=stripe: the storefront's checkout \
             collects cards with Stripe's Payment Element"
        );
    }
    Ok(())
}

/// The queues every service consumes and the events each receives, as the services declare them.
pub const SUBSCRIPTIONS: [&[platform::events::Subscription]; 5] = [
    shop_user::consumers::SUBSCRIPTIONS,
    shop_product::consumers::SUBSCRIPTIONS,
    shop_order::consumers::SUBSCRIPTIONS,
    shop_payment::consumers::SUBSCRIPTIONS,
    shop_inventory::consumers::SUBSCRIPTIONS,
];

/// The deployment's event routing: every event type to the queue of every service subscribed to
/// it. Every process needs all of it, whichever services it runs: a publisher puts its events on
/// the queues of their consumers.
pub fn routing() -> platform::events::Routing {
    platform::events::Routing::of(SUBSCRIPTIONS.iter().flat_map(|s| s.iter()))
}

/// Builds all the services on `infra` (opening and migrating their stores, starting their relays
/// and consumers). Their routes are disjoint, so merged they route by path prefix exactly as the
/// edge does.
pub async fn services(infra: &Infra) -> anyhow::Result<Vec<Service>> {
    check_together(&infra.config)?;
    Ok(vec![
        shop_user::build(infra.clone()).await?,
        shop_product::build(infra.clone()).await?,
        shop_order::build(infra.clone()).await?,
        shop_payment::build(infra.clone()).await?,
        shop_inventory::build(infra.clone()).await?,
        shop_web::build(infra.clone()).await?,
    ])
}

/// The services' outboxes on the stores `infra`'s configuration names (`only` one of them, by
/// name), for the tools that read what their relays parked.
pub async fn outboxes(
    infra: &Infra,
    only: Option<&str>,
) -> anyhow::Result<Vec<(&'static str, std::sync::Arc<dyn platform::events::outbox::OutboxStore>)>> {
    const NAMES: [&str; 5] = ["user", "product", "order", "payment", "inventory"];
    if let Some(name) = only
        && !NAMES.contains(&name)
    {
        anyhow::bail!("no service named {name} (one of {})", NAMES.join(", "));
    }
    let mut outboxes = Vec::new();
    for name in NAMES.into_iter().filter(|name| only.is_none_or(|only| only == *name)) {
        let outbox = match name {
            "user" => shop_user::outbox(&infra.config).await?,
            "product" => shop_product::outbox(infra).await?,
            "order" => shop_order::outbox(infra).await?,
            "payment" => shop_payment::outbox(infra).await?,
            _ => shop_inventory::outbox(infra).await?,
        };
        outboxes.push((name, outbox));
    }
    Ok(outboxes)
}

/// The whole platform's OpenAPI document: every service's, merged.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = shop_user::api::openapi();
    for other in [
        shop_product::api::openapi(),
        shop_order::api::openapi(),
        shop_payment::api::openapi(),
        shop_inventory::api::openapi(),
    ] {
        document.merge(other);
    }
    document
}

/// A service built to run as a process of its own (`build` is its `build` on the process's
/// infrastructure), answering `/openapi.json` with the whole platform's document: the balancer
/// sends that path to one service, and clients read the API they reach through it.
pub async fn alone(build: impl std::future::Future<Output = anyhow::Result<Service>>) -> anyhow::Result<Service> {
    let mut service = build.await?;
    service.openapi = openapi();
    Ok(service)
}

/// Seeds the catalog: the demo categories, and generated products with their stock (catalog and
/// inventory). It opens the stores once for everything it seeds.
pub struct Seeder {
    catalog: shop_product::Catalog,
    infra: Infra,
}

impl Seeder {
    /// A seeder of `infra`'s stores.
    pub async fn open(infra: &Infra) -> anyhow::Result<Self> {
        Ok(Self { catalog: shop_product::open_catalog(infra).await?, infra: infra.clone() })
    }

    /// Seeds the demo categories into an empty catalog; the number added (0 when it had some).
    pub async fn demo(&self) -> anyhow::Result<usize> {
        Ok(shop_product::app::seed::seed_demo(&self.catalog).await?)
    }

    /// Seeds the demo shipping zones, tax rates and promotions into an order service that has
    /// none; the number added.
    pub async fn pricing(&self) -> anyhow::Result<usize> {
        let backend = shop_order::open(&self.infra).await?;
        Ok(shop_order::app::seed::seed_pricing(backend.pricing.as_ref()).await?)
    }

    /// Seeds `count` generated products with their stock and their drawn pictures (through the
    /// object store); `progress` hears the running count.
    pub async fn products(
        &self,
        count: u64,
        progress: impl FnMut(u64) + Send,
    ) -> anyhow::Result<shop_product::app::import::ImportReport> {
        let stock = InventoryStock(shop_inventory::open(&self.infra).await?.store);
        let objects = Some(self.infra.objects.as_ref());
        shop_product::app::seed::seed_products(&self.catalog, count, &stock, objects, progress).await
    }
}

/// Seeds the demo categories into an empty catalog; the number added.
pub async fn seed_demo(infra: &Infra) -> anyhow::Result<usize> {
    Seeder::open(infra).await?.demo().await
}

/// The inventory as the seeder's stock sink.
struct InventoryStock(Arc<dyn shop_inventory::store::InventoryStore>);

#[async_trait::async_trait]
impl shop_product::app::seed::StockSink for InventoryStock {
    async fn set(&self, levels: &[(String, i64)]) -> anyhow::Result<()> {
        Ok(self.0.set_many(levels, "seeded stock", "seed").await?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn taking_cards_through_stripe_needs_the_storefronts_publishable_key() {
        let mut config = platform::Config::for_tests("unused");
        assert!(super::check_together(&config).is_ok(), "the simulated provider needs no key");
        config.set("payment_provider", "stripe").set("stripe_secret_key", "sk_test_x");
        let refused = super::check_together(&config).unwrap_err().to_string();
        assert!(refused.contains("SHOP_STRIPE_PUBLISHABLE_KEY"), "{refused}");
        config.set("stripe_publishable_key", "");
        assert!(super::check_together(&config).is_err(), "an empty key is none");
        config.set("stripe_publishable_key", "pk_test_x");
        assert!(super::check_together(&config).is_ok());
    }

    #[test]
    fn every_queue_is_consumed_by_one_service_and_every_command_reaches_one_queue() {
        let mut owners = HashMap::new();
        for (service, subscriptions) in super::SUBSCRIPTIONS.iter().enumerate() {
            assert!(!subscriptions.is_empty(), "service {service} declares no subscription");
            for subscription in subscriptions.iter() {
                let previous = owners.insert(subscription.queue, service);
                assert!(previous.is_none(), "{} is declared twice", subscription.queue);
                assert!(!subscription.events.is_empty(), "{} receives nothing", subscription.queue);
            }
        }
        let routing = super::routing();
        assert_eq!(routing.queues().count(), owners.len());
        // A saga command is executed by exactly one service, which is the one that declared it.
        for (queue, command) in [
            (shop_inventory::consumers::QUEUE, platform::contracts::inventory::Reserve::KIND),
            (shop_inventory::consumers::QUEUE, platform::contracts::inventory::Release::KIND),
            (shop_payment::consumers::QUEUE, platform::contracts::payment::Authorize::KIND),
            (shop_payment::consumers::QUEUE, platform::contracts::payment::RefundCommand::KIND),
        ] {
            assert_eq!(routing.queues_for(command).collect::<Vec<_>>(), [queue], "{command}");
        }
        // An order's confirmation reaches the mailer; a product change reaches the indexer.
        assert!(routing.queues_for("order.confirmed.v1").any(|q| q == shop_user::consumers::QUEUE));
        assert!(
            routing.queues_for(shop_product::domain::product::UPSERTED).any(|q| q == shop_product::consumers::QUEUE)
        );
    }

    /// The local stack's nginx (`docker/nginx.conf`): `(location prefix, upstream)` pairs.
    fn nginx_routes() -> Vec<(String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docker/nginx.conf");
        let conf = std::fs::read_to_string(path).expect("docker/nginx.conf");
        conf.lines()
            .filter_map(|line| {
                let rest = line.trim().strip_prefix("location ")?;
                let (prefix, body) = rest.split_once(" {")?;
                let upstream = body.split("proxy_pass http://").nth(1)?.split(';').next()?;
                Some((prefix.trim().to_owned(), upstream.trim().to_owned()))
            })
            .collect()
    }

    /// Each service's OpenAPI document, by service.
    fn documents() -> [(&'static str, utoipa::openapi::OpenApi); 5] {
        [
            (shop_user::NAME, shop_user::api::openapi()),
            (shop_product::NAME, shop_product::api::openapi()),
            (shop_order::NAME, shop_order::api::openapi()),
            (shop_payment::NAME, shop_payment::api::openapi()),
            (shop_inventory::NAME, shop_inventory::api::openapi()),
        ]
    }

    #[test]
    fn every_operation_of_the_merged_document_has_an_operation_id_of_its_own() {
        let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut duplicates = Vec::new();
        for (service, openapi) in documents() {
            let document = serde_json::to_value(&openapi).unwrap();
            for (path, item) in document["paths"].as_object().unwrap() {
                for (method, operation) in item.as_object().unwrap() {
                    let Some(id) = operation.get("operationId").and_then(|id| id.as_str()) else { continue };
                    let here = format!("{service}: {} {path}", method.to_uppercase());
                    if let Some(first) = seen.insert(id.to_owned(), here.clone()) {
                        duplicates.push(format!("{id}: {first} and {here}"));
                    }
                }
            }
        }
        assert!(seen.len() > 40, "only {} operations", seen.len());
        assert!(duplicates.is_empty(), "operation ids used twice: {duplicates:#?}");
    }

    #[test]
    fn the_local_stack_routes_every_documented_path_to_the_service_that_serves_it() {
        let routes = nginx_routes();
        assert!(routes.len() >= 5, "{routes:?}");
        let services = documents();
        let mut checked = 0;
        for (service, openapi) in &services {
            for path in openapi.paths.paths.keys() {
                // nginx picks the longest matching prefix.
                let routed = routes
                    .iter()
                    .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
                    .max_by_key(|(prefix, _)| prefix.len())
                    .map(|(_, upstream)| upstream.as_str());
                assert_eq!(routed, Some(*service), "{path} of the {service} service");
                checked += 1;
            }
        }
        assert!(checked > 40, "only {checked} paths");
    }

    #[test]
    fn the_dashboards_read_the_business_metrics_the_services_write() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/lib/observability-stack.ts");
        let stack = std::fs::read_to_string(path).expect("infra/lib/observability-stack.ts");
        let contract = stack.split("export const BUSINESS_METRICS").nth(1).expect("BUSINESS_METRICS in the stack");
        let contract = contract.split("} as const").next().unwrap();
        let mut read: Vec<(String, String)> = contract
            .split("service: '")
            .skip(1)
            .map(|entry| {
                let service = entry.split('\'').next().unwrap().to_owned();
                let name = entry.split("name: '").nth(1).unwrap().split('\'').next().unwrap().to_owned();
                (service, name)
            })
            .collect();
        let mut written: Vec<(String, String)> = platform::telemetry::emf::BUSINESS_METRICS
            .iter()
            .map(|(service, name)| ((*service).to_owned(), (*name).to_owned()))
            .collect();
        read.sort();
        written.sort();
        assert_eq!(read, written);
        let config =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/lib/config.ts")).unwrap();
        let namespace = format!("export const METRIC_NAMESPACE = '{}';", platform::telemetry::emf::NAMESPACE);
        assert!(config.contains(&namespace), "{namespace}");
    }
}
