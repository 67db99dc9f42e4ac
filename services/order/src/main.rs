//! The order service as its own process.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_order::NAME, shop_order::settings::SECTION, shop_order::run).await
}
