//! What the product service receives: catalog changes (its own `product.*` events) and the
//! inventory's stock status, on the search indexer's queue (see [`crate::indexer`]).

use async_trait::async_trait;
use platform::events::{Event, EventHandler, HandlerError, Subscription};

use crate::app::indexer::{Indexer, ProductRef, StockChange};

/// The indexer's queue.
pub const QUEUE: &str = "product-indexer";

/// Events the indexer takes from its queue at once (one index commit each batch).
pub const BATCH: usize = 512;

/// The queues the service consumes and the events each receives.
pub const SUBSCRIPTIONS: &[Subscription] = &[Subscription {
    queue: QUEUE,
    events: &[
        crate::domain::product::UPSERTED,
        crate::domain::product::UPSERTED_V1,
        crate::domain::product::DELETED,
        "inventory.changed.v1",
    ],
}];

/// What an event asks of the index.
enum Change {
    Product(String),
    Stock(StockChange),
    Nothing,
}

fn change(event: &Event) -> Result<Change, HandlerError> {
    match event.kind.as_str() {
        crate::domain::product::UPSERTED | crate::domain::product::UPSERTED_V1 | crate::domain::product::DELETED => {
            let product: ProductRef = event
                .data_as()
                .map_err(|e| HandlerError::Reject(format!("{} without a product id: {e}", event.kind)))?;
            Ok(Change::Product(product.id))
        }
        "inventory.changed.v1" => {
            let stock: StockChange =
                event.data_as().map_err(|e| HandlerError::Reject(format!("inventory.changed.v1 malformed: {e}")))?;
            Ok(Change::Stock(stock))
        }
        _ => Ok(Change::Nothing),
    }
}

#[async_trait]
impl EventHandler for Indexer {
    #[tracing::instrument(skip_all, fields(product.id, sku))]
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        match change(event)? {
            Change::Product(id) => {
                tracing::Span::current().record("product.id", id.as_str());
                self.apply(vec![id], Vec::new()).await
            }
            Change::Stock(level) => {
                tracing::Span::current().record("sku", level.sku.as_str());
                self.apply(Vec::new(), vec![level]).await
            }
            Change::Nothing => Ok(()),
        }
    }

    async fn handle_batch(&self, events: &[Event]) -> Vec<Result<(), HandlerError>> {
        // Malformed events are rejected alone; the rest are applied together, in one index commit.
        let mut outcomes: Vec<Option<Result<(), HandlerError>>> = Vec::with_capacity(events.len());
        let mut ids = Vec::new();
        let mut stock = Vec::new();
        for event in events {
            match change(event) {
                Ok(Change::Product(id)) => {
                    ids.push(id);
                    outcomes.push(None);
                }
                Ok(Change::Stock(level)) => {
                    stock.push(level);
                    outcomes.push(None);
                }
                Ok(Change::Nothing) => outcomes.push(Some(Ok(()))),
                Err(rejected) => outcomes.push(Some(Err(rejected))),
            }
        }
        let applied = self.apply(ids, stock).await;
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| match &applied {
                    Ok(()) => Ok(()),
                    Err(error) => Err(HandlerError::retry(error.to_string())),
                })
            })
            .collect()
    }
}
