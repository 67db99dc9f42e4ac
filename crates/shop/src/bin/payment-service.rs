//! The payment service as its own process (the local stack and AWS run one per container),
//! answering `/openapi.json` with the whole platform's document.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_payment::NAME, shop_payment::settings::SECTION, shop::routing(), |infra| {
        shop::alone(shop_payment::build(infra))
    })
    .await
}
