//! The order service as its own process (the local stack and AWS run one per container).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_order::NAME, shop_order::settings::SECTION, shop::routing(), shop_order::build)
        .await
}
