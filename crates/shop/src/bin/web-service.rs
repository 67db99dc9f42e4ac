//! The web tier (the storefront) as its own process (the local stack and AWS run one per
//! container), calling the other services over HTTP.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_web::NAME, shop_web::settings::SECTION, shop::routing(), |infra| {
        shop::alone(shop_web::build(infra))
    })
    .await
}
