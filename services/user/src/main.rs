//! The user service as its own process.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::infra::service_main(shop_user::NAME, shop_user::settings::SECTION, shop_user::run).await
}
