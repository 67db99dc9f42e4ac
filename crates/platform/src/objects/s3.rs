//! The S3 adapter, with SigV4 presigned upload URLs. Objects are served through CloudFront
//! (`SHOP_CDN_BASE_URL`) or, without one, from the bucket's own URL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::signer::Signer;
use object_store::{Attribute, Attributes, ObjectStore as _, ObjectStoreExt, PutOptions};
use url::Url;

use super::{Object, ObjectError, ObjectStore, PresignedUpload, join, read, remove, validate_key};

/// Objects in an S3 bucket.
#[derive(Clone)]
pub struct S3ObjectStore {
    store: Arc<AmazonS3>,
    public_base: Url,
}

impl std::fmt::Debug for S3ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3ObjectStore").field("public_base", &self.public_base.as_str()).finish()
    }
}

/// Makes `bucket` on an emulator (moto, LocalStack) at `endpoint`, which take unsigned requests; a
/// bucket that exists is left as it is. Anyone may read its public prefixes
/// ([`PUBLIC_PREFIXES`](super::PUBLIC_PREFIXES), a bucket policy), as the CDN serves them on AWS;
/// everything else (shipping labels) stays private. On AWS the CDK app makes
/// the bucket and CloudFront reads it.
pub async fn create_bucket_on_emulator(endpoint: &Url, bucket: &str) -> Result<(), ObjectError> {
    let url = format!("{}/{bucket}", endpoint.as_str().trim_end_matches('/'));
    let client = reqwest::Client::new();
    let response = client.put(&url).send().await.map_err(|e| ObjectError::Config(format!("{url}: {e}")))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !(status.is_success() || body.contains("BucketAlreadyOwnedByYou") || body.contains("BucketAlreadyExists")) {
        return Err(ObjectError::Config(format!("creating bucket {bucket}: {status}: {body}")));
    }
    let public: Vec<String> = super::PUBLIC_PREFIXES.iter().map(|p| format!("arn:aws:s3:::{bucket}/{p}*")).collect();
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicPrefixes", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": public,
    }]});
    let response = client
        .put(format!("{url}?policy"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(policy.to_string())
        .send()
        .await
        .map_err(|e| ObjectError::Config(format!("{url}?policy: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(ObjectError::Config(format!("the policy of bucket {bucket}: {status}: {body}")));
    }
    Ok(())
}

impl S3ObjectStore {
    /// A store on `bucket`. Credentials come from the environment (the ECS task role on AWS);
    /// `endpoint` points at moto or LocalStack locally (path-style, plain HTTP allowed).
    pub fn new(
        bucket: &str,
        region: &str,
        endpoint: Option<&Url>,
        cdn_base: Option<&Url>,
    ) -> Result<Self, ObjectError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(region);
        let bucket_url = match endpoint {
            Some(endpoint) => {
                let endpoint = endpoint.as_str().trim_end_matches('/');
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
                format!("{endpoint}/{bucket}/")
            }
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/"),
        };
        let store = builder.build()?;
        let public_base = match cdn_base {
            Some(base) => base.clone(),
            None => Url::parse(&bucket_url).map_err(|e| ObjectError::Config(e.to_string()))?,
        };
        Ok(Self { store: Arc::new(store), public_base })
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), ObjectError> {
        let path = validate_key(key)?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        let options = PutOptions { attributes, ..Default::default() };
        self.store.put_opts(&path, bytes.into(), options).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        read(self.store.as_ref(), key).await
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        super::size_of(self.store.as_ref(), key).await
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        remove(self.store.as_ref(), key).await
    }

    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<PresignedUpload, ObjectError> {
        let path = validate_key(key)?;
        let url = self.store.signed_url(http::Method::PUT, &path, expires_in).await?;
        Ok(PresignedUpload {
            url: url.into(),
            method: "PUT".into(),
            headers: [("content-type".to_owned(), content_type.to_owned())].into(),
            expires_at: Utc::now() + expires_in,
            public_url: self.public_url(key).into(),
        })
    }

    fn public_url(&self, key: &str) -> Url {
        join(&self.public_base, key)
    }

    async fn ping(&self) -> Result<(), ObjectError> {
        // A HEAD of a key that need not exist: any answer but a transport or auth failure is fine.
        match self.store.head(&object_store::path::Path::from("_ready")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}
