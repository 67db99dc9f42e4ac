//! The inventory service as its own process.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_inventory::NAME, shop_inventory::settings::SECTION, shop_inventory::run).await
}
