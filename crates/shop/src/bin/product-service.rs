//! The product service as its own process (the local stack and AWS run one per container).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(
        shop_product::NAME,
        shop_product::settings::SECTION,
        shop::routing(),
        shop_product::build,
    )
    .await
}
