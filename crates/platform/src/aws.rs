//! The AWS SDK configuration every AWS adapter shares: region, credentials from the default chain
//! (the ECS task role on AWS; environment variables locally) and an optional endpoint override for
//! the moto server or LocalStack.

pub use aws_config::SdkConfig;
use aws_config::{BehaviorVersion, Region};

use crate::config::Config;

/// The SDK configuration a platform configuration names.
pub async fn sdk_config(config: &Config) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(config.aws_region.clone()));
    if let Some(endpoint) = &config.aws_endpoint_url {
        loader = loader.endpoint_url(endpoint.as_str().trim_end_matches('/'));
    }
    loader.load().await
}

/// An SQS client.
pub fn sqs_client(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}
