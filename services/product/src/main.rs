//! The product service as its own process.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_product::NAME, shop_product::settings::SECTION, shop_product::run).await
}
