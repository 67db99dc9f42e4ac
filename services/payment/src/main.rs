//! The payment service as its own process.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_payment::NAME, shop_payment::settings::SECTION, shop_payment::run).await
}
