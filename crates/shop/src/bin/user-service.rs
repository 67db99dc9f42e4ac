//! The user service as its own process (the local stack and AWS run one per container).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_user::NAME, shop_user::settings::SECTION, shop::routing(), shop_user::build)
        .await
}
