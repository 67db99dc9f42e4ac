//! The inventory service as its own process (the local stack and AWS run one per container).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(
        shop_inventory::NAME,
        shop_inventory::settings::SECTION,
        shop::routing(),
        shop_inventory::build,
    )
    .await
}
