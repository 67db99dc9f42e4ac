//! The user service as its own process (the local stack and AWS run one per container),
//! answering `/openapi.json` with the whole platform's document.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_user::NAME, shop_user::settings::SECTION, shop::routing(), |infra| {
        shop::alone(shop_user::build(infra))
    })
    .await
}
