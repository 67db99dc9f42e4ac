//! The SES mail sink against the moto server's SES v2 API.

use std::sync::Arc;

use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
use platform::cache::Cache;
use platform::cache::memory::MemoryCache;
use shop_user::app::mail::{MailSink, SesSink};

fn ses_client(endpoint: &str) -> aws_sdk_sesv2::Client {
    platform::install_crypto_provider();
    let config = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    aws_sdk_sesv2::Client::from_conf(config)
}

/// The raw messages moto's SES holds that contain `marker`.
async fn sent_with(endpoint: &str, marker: &str) -> Vec<serde_json::Value> {
    let url = format!("{}/moto-api/data.json", endpoint.trim_end_matches('/'));
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    let data: serde_json::Value = serde_json::from_str(&body).unwrap();
    let raw = data["ses"]["RawMessage"].as_array().cloned().unwrap_or_default();
    raw.into_iter().filter(|m| m["raw_data"].as_str().is_some_and(|d| d.contains(marker))).collect()
}

#[tokio::test]
async fn ses_sends_each_email_once_from_a_verified_identity() {
    let Some(endpoint) = platform::testing::server_env("SHOP_TEST_AWS_ENDPOINT") else { return };
    let client = ses_client(&endpoint);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let from_address = format!("shop-{run}@example.com");
    client.create_email_identity().email_identity(&from_address).send().await.unwrap();
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new(100));
    let sink = SesSink::new(client.clone(), format!("Shop <{from_address}>"), cache.clone());

    let id = format!("evt-{run}");
    let message = format!(
        "Message-ID: <{id}@shop>\r\nFrom: Shop <{from_address}>\r\nTo: ada@example.com\r\nSubject: Your order\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello {run}\r\n"
    );
    sink.deliver(&id, "ada@example.com", &message).await.unwrap();
    // A redelivered event sends nothing twice.
    sink.deliver(&id, "ada@example.com", &message).await.unwrap();
    // Another email is another id.
    let other = message.replace("Hello", "Hello again");
    sink.deliver(&format!("{id}-2"), "ada@example.com", &other).await.unwrap();

    // Read once: moto's whole state is a large document by the time the suite gets here.
    let sent = sent_with(&endpoint, &run).await;
    assert_eq!(sent.len(), 2, "one message per id: {sent:?}");
    let first = sent.iter().find(|m| m["raw_data"] == message.as_str()).expect("the message as it was rendered");
    assert_eq!(first["source"], format!("Shop <{from_address}>"));
    assert!(first["destinations"].as_array().unwrap().iter().all(|d| d == "ada@example.com"));
    assert!(sent.iter().any(|m| m["raw_data"] == other.as_str()));
}

#[tokio::test]
async fn a_refused_email_is_not_remembered_and_is_tried_again() {
    let Some(endpoint) = platform::testing::server_env("SHOP_TEST_AWS_ENDPOINT") else { return };
    let client = ses_client(&endpoint);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let from_address = format!("shop-{run}@example.com");
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new(100));
    let sink = SesSink::new(client.clone(), from_address.clone(), cache.clone());
    let id = format!("evt-{run}");
    let message = format!("From: {from_address}\r\nTo: ada@example.com\r\nSubject: x\r\n\r\n{run}\r\n");

    // SES refuses an identity it has not verified.
    let refused = sink.deliver(&id, "ada@example.com", &message).await.unwrap_err();
    assert!(format!("{:?}", refused.cause()).contains("MessageRejected"), "{:?}", refused.cause());
    assert!(refused.is_permanent(), "a refusal a retry would meet again: dead-lettered, redriven once fixed");
    assert_eq!(cache.get(&format!("mail:{id}")).await.unwrap(), None, "the claim is given back");

    // Once it is verified, the queue's next try delivers it: one message in all, so the refused
    // attempt sent nothing.
    client.create_email_identity().email_identity(&from_address).send().await.unwrap();
    sink.deliver(&id, "ada@example.com", &message).await.unwrap();
    assert_eq!(sent_with(&endpoint, &run).await.len(), 1);
}

#[tokio::test]
async fn a_delivery_under_way_elsewhere_is_tried_again_later() {
    let Some(endpoint) = platform::testing::server_env("SHOP_TEST_AWS_ENDPOINT") else { return };
    let client = ses_client(&endpoint);
    let run = uuid::Uuid::new_v4().simple().to_string();
    // An identity SES has not verified: had this delivery called SES, it would be refused for good.
    let from_address = format!("shop-{run}@example.com");
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new(100));
    let sink = SesSink::new(client, from_address.clone(), cache.clone());
    let id = format!("evt-{run}");
    // Another task holds the claim: this delivery neither calls SES nor reports success.
    assert!(cache.set_if_absent(&format!("mail:{id}"), b"sending:another-attempt", None).await.unwrap());
    let message = format!("From: {from_address}\r\nTo: ada@example.com\r\nSubject: x\r\n\r\n{run}\r\n");
    let later = sink.deliver(&id, "ada@example.com", &message).await.unwrap_err();
    assert!(!later.is_permanent(), "tried again later, and SES was not called: {:?}", later.cause());
    assert!(later.cause().to_string().contains("another attempt"), "{:?}", later.cause());
    let held = cache.get(&format!("mail:{id}")).await.unwrap();
    assert_eq!(held.as_deref(), Some(&b"sending:another-attempt"[..]), "the other attempt's claim stays");
}
