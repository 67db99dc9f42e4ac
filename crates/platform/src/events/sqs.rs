//! The SQS adapter: one queue per consumer (`{prefix}{queue}`) with a dead-letter queue
//! (`{prefix}{queue}-dlq`) bound by a redrive policy of [`MAX_RECEIVES`] receives. On AWS the queues
//! are made by the CDK app; `ensure_queue` makes them locally (moto, LocalStack) and checks them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use super::bus::{BusError, DeadLetter, Delivery, EventBus, MAX_RECEIVES};
use super::envelope::Event;
use super::routing::Routing;

/// The largest batch SQS returns.
const SQS_MAX_BATCH: usize = 10;
/// Long-poll wait of the dead-letter listing and redrive, which must not stop at a sampled empty
/// answer.
const ADMIN_WAIT_SECONDS: i32 = 1;

fn sqs_error<E>(operation: &'static str) -> impl FnOnce(aws_sdk_sqs::error::SdkError<E>) -> BusError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    move |error| {
        if error.code() == Some("AWS.SimpleQueueService.NonExistentQueue") || error.code() == Some("QueueDoesNotExist")
        {
            return BusError::UnknownQueue(operation.to_owned());
        }
        if operation == "SendMessage"
            && matches!(error.code(), Some("InvalidMessageContents" | "MessageTooLong" | "InvalidParameterValue"))
        {
            // Sending the same body again can never succeed.
            return BusError::Refused(format!("{operation}: {}", error.message().unwrap_or("refused")));
        }
        BusError::Sqs { operation, source: DisplayErrorContext(error).to_string().into() }
    }
}

/// Events over Amazon SQS.
#[derive(Clone)]
pub struct SqsBus {
    client: Client,
    prefix: String,
    routing: Arc<Routing>,
    wait_seconds: i32,
    urls: Arc<Mutex<HashMap<String, String>>>,
}

impl std::fmt::Debug for SqsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsBus").field("prefix", &self.prefix).finish()
    }
}

impl SqsBus {
    /// A bus on `client` whose queue names start with `prefix`; a receive long-polls `wait_seconds`.
    pub fn new(client: Client, prefix: impl Into<String>, routing: Routing, wait_seconds: u8) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            routing: Arc::new(routing),
            wait_seconds: i32::from(wait_seconds.min(20)),
            urls: Arc::default(),
        }
    }

    fn name(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }

    fn dlq_name(&self, queue: &str) -> String {
        format!("{}{queue}-dlq", self.prefix)
    }

    async fn url(&self, name: &str) -> Result<String, BusError> {
        if let Some(url) = self.urls.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(url.clone());
        }
        let output = self.client.get_queue_url().queue_name(name).send().await.map_err(|e| {
            match sqs_error("GetQueueUrl")(e) {
                BusError::UnknownQueue(_) => BusError::UnknownQueue(name.to_owned()),
                other => other,
            }
        })?;
        let url = output.queue_url().ok_or_else(|| BusError::UnknownQueue(name.to_owned()))?.to_owned();
        self.urls.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), url.clone());
        Ok(url)
    }

    async fn send_body(&self, queue_name: &str, body: &str) -> Result<(), BusError> {
        if let Some(reason) = super::bus::refusal(body) {
            return Err(BusError::Refused(reason));
        }
        let url = self.url(queue_name).await?;
        self.client.send_message().queue_url(url).message_body(body).send().await.map_err(sqs_error("SendMessage"))?;
        Ok(())
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        visibility: Duration,
        wait_seconds: i32,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, BusError> {
        let output = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, SQS_MAX_BATCH) as i32)
            .visibility_timeout(visibility_secs(visibility))
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sqs_error("ReceiveMessage"))?;
        Ok(output.messages.unwrap_or_default())
    }
}

fn visibility_secs(visibility: Duration) -> i32 {
    // SQS counts whole seconds; round up so a message is never visible sooner than asked.
    i32::try_from(visibility.as_millis().div_ceil(1000)).unwrap_or(43_200).min(43_200)
}

fn receive_count(message: &aws_sdk_sqs::types::Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[async_trait]
impl EventBus for SqsBus {
    async fn ensure_queue(&self, queue: &str) -> Result<(), BusError> {
        let dlq = self
            .client
            .create_queue()
            .queue_name(self.dlq_name(queue))
            .send()
            .await
            .map_err(sqs_error("CreateQueue"))?;
        let dlq_url = dlq.queue_url().unwrap_or_default().to_owned();
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs_error("GetQueueAttributes"))?;
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| BusError::UnknownQueue(self.dlq_name(queue)))?;
        let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES.to_string()});
        let main = self
            .client
            .create_queue()
            .queue_name(self.name(queue))
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await
            .map_err(sqs_error("CreateQueue"))?;
        let mut urls = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        urls.insert(self.dlq_name(queue), dlq_url);
        urls.insert(self.name(queue), main.queue_url().unwrap_or_default().to_owned());
        Ok(())
    }

    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let body = event.to_json();
        for queue in self.routing.queues_for(&event.kind) {
            self.send_body(&self.name(queue), &body).await?;
        }
        Ok(())
    }

    async fn send(&self, queue: &str, event: &Event) -> Result<(), BusError> {
        self.send_body(&self.name(queue), &event.to_json()).await
    }

    async fn receive(&self, queue: &str, max: usize, visibility: Duration) -> Result<Vec<Delivery>, BusError> {
        let url = self.url(&self.name(queue)).await?;
        let messages = self.receive_from(&url, max, visibility, self.wait_seconds).await?;
        Ok(messages
            .into_iter()
            .map(|message| Delivery {
                queue: queue.to_owned(),
                receive_count: receive_count(&message),
                message_id: message.message_id.unwrap_or_default(),
                receipt: message.receipt_handle.unwrap_or_default(),
                body: message.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), BusError> {
        let url = self.url(&self.name(&delivery.queue)).await?;
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(&delivery.receipt)
            .send()
            .await
            .map_err(sqs_error("DeleteMessage"))?;
        Ok(())
    }

    async fn nack(&self, delivery: &Delivery, delay: Duration) -> Result<(), BusError> {
        let url = self.url(&self.name(&delivery.queue)).await?;
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(&delivery.receipt)
            .visibility_timeout(visibility_secs(delay))
            .send()
            .await
            .map_err(sqs_error("ChangeMessageVisibility"))?;
        Ok(())
    }

    async fn extend(&self, deliveries: &[&Delivery], visibility: Duration) -> Result<(), BusError> {
        let Some(first) = deliveries.first() else { return Ok(()) };
        let url = self.url(&self.name(&first.queue)).await?;
        // One queue per consumer; SQS changes at most ten messages a call.
        for chunk in deliveries.chunks(10) {
            let mut batch = self.client.change_message_visibility_batch().queue_url(&url);
            for (i, delivery) in chunk.iter().enumerate() {
                debug_assert_eq!(delivery.queue, first.queue);
                let entry = aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&delivery.receipt)
                    .visibility_timeout(visibility_secs(visibility))
                    .build()
                    .map_err(|e| BusError::Sqs { operation: "ChangeMessageVisibilityBatch", source: e.into() })?;
                batch = batch.entries(entry);
            }
            let answer = batch.send().await.map_err(sqs_error("ChangeMessageVisibilityBatch"))?;
            if let Some(failed) = answer.failed().first() {
                let why = format!("{}: {}", failed.code(), failed.message().unwrap_or_default());
                return Err(BusError::Sqs { operation: "ChangeMessageVisibilityBatch", source: why.into() });
            }
        }
        Ok(())
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), BusError> {
        tracing::warn!(queue = %delivery.queue, message.id = %delivery.message_id, %reason, "dead-lettering a message");
        self.send_body(&self.dlq_name(&delivery.queue), &delivery.body).await?;
        self.ack(delivery).await
    }

    async fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let url = self.url(&self.dlq_name(queue)).await?;
        let mut letters = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut receipts = Vec::new();
        // Peek: receive with a short visibility, then make each message visible again at once.
        while letters.len() < limit {
            // A short poll samples only some SQS servers: wait briefly so an empty answer means empty.
            let batch =
                self.receive_from(&url, limit - letters.len(), Duration::from_secs(30), ADMIN_WAIT_SECONDS).await?;
            if batch.is_empty() {
                break;
            }
            for message in batch {
                let id = message.message_id.clone().unwrap_or_default();
                receipts.push(message.receipt_handle.clone().unwrap_or_default());
                if seen.insert(id.clone()) {
                    letters.push(DeadLetter {
                        receive_count: receive_count(&message),
                        message_id: id,
                        queue: queue.to_owned(),
                        body: message.body.unwrap_or_default(),
                        reason: None,
                    });
                }
            }
        }
        for receipt in receipts {
            self.client
                .change_message_visibility()
                .queue_url(&url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(sqs_error("ChangeMessageVisibility"))?;
        }
        Ok(letters)
    }

    async fn redrive(&self, queue: &str) -> Result<usize, BusError> {
        let dlq_url = self.url(&self.dlq_name(queue)).await?;
        let target = self.name(queue);
        let mut moved = 0;
        loop {
            let batch = self.receive_from(&dlq_url, SQS_MAX_BATCH, Duration::from_secs(30), ADMIN_WAIT_SECONDS).await?;
            if batch.is_empty() {
                return Ok(moved);
            }
            for message in batch {
                self.send_body(&target, message.body().unwrap_or_default()).await?;
                self.client
                    .delete_message()
                    .queue_url(&dlq_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .map_err(sqs_error("DeleteMessage"))?;
                moved += 1;
            }
        }
    }

    fn ordered(&self) -> bool {
        false
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.client.list_queues().max_results(1).send().await.map_err(sqs_error("ListQueues"))?;
        Ok(())
    }
}
