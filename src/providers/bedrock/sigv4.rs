//! AWS credentials and SigV4 request signing for Bedrock.
//!
//! Signing is the `aws-sigv4` crate's, not ours: SigV4 has enough edge cases (path
//! double-encoding, header canonicalisation, session tokens) that a hand-rolled
//! signer is a liability. Credentials come from any [`ProvideCredentials`]: the
//! standard AWS chain ([`default_credentials`], [`lazy_default_credentials`]), or fixed
//! keys ([`static_credentials`]).
//! [`CredentialCache`] keeps the current credentials until shortly before they expire,
//! because the chain itself does not cache: every call would otherwise go back to the
//! profile files, STS or the instance metadata service.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign as sigv4_sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use tokio::sync::{OnceCell, RwLock};

/// The SigV4 signing name of the Bedrock runtime API (it differs from the endpoint
/// prefix, `bedrock-runtime`): `signingName` in the service model.
pub const SIGNING_NAME: &str = "bedrock";

/// Credentials are refreshed this long before they expire, so a request never leaves
/// with credentials that lapse in flight.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Resolves credentials the way the AWS SDKs and CLI do: environment variables, the
/// shared config and credentials files (`profile`, or `AWS_PROFILE`, or `default`),
/// web identity tokens (EKS), the ECS container endpoint, then EC2 instance metadata.
/// Nothing is fetched until the first request needs credentials.
pub async fn default_credentials(region: String, profile: Option<String>) -> SharedCredentialsProvider {
    use aws_config::default_provider::credentials::DefaultCredentialsChain;
    use aws_config::provider_config::ProviderConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

    // The chain's own calls (STS, IMDS, ECS) need an HTTP client; this one uses rustls
    // on ring, as the upstream client does (providers/transport.rs), instead of
    // aws-config's default aws-lc build.
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut chain = DefaultCredentialsChain::builder()
        .configure(ProviderConfig::default().with_http_client(http))
        .region(aws_config::Region::new(region));
    if let Some(profile) = &profile {
        chain = chain.profile_name(profile);
    }
    SharedCredentialsProvider::new(chain.build().await)
}

/// [`default_credentials`] for callers that cannot await (building providers from
/// configuration): the chain is built on the first request that needs credentials.
pub fn lazy_default_credentials(region: String, profile: Option<String>) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(LazyDefaultChain { region, profile, chain: OnceCell::new() })
}

#[derive(Debug)]
struct LazyDefaultChain {
    region: String,
    profile: Option<String>,
    chain: OnceCell<SharedCredentialsProvider>,
}

impl ProvideCredentials for LazyDefaultChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let chain = self.chain.get_or_init(|| default_credentials(self.region.clone(), self.profile.clone())).await;
            chain.provide_credentials().await
        })
    }
}

/// Fixed credentials, e.g. keys given in the gateway's configuration.
pub fn static_credentials(access_key_id: String, secret_access_key: String, session_token: Option<String>) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(access_key_id, secret_access_key, session_token, None, "switchyard-config"))
}

/// The current credentials of a provider, fetched once and reused until they are
/// about to expire. Concurrent requests wait for one refresh rather than each
/// starting their own.
#[derive(Debug)]
pub struct CredentialCache {
    provider: SharedCredentialsProvider,
    current: RwLock<Option<Credentials>>,
}

impl CredentialCache {
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        CredentialCache { provider, current: RwLock::new(None) }
    }

    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        if let Some(credentials) = self.current.read().await.as_ref().filter(|c| is_fresh(c)) {
            return Ok(credentials.clone());
        }
        let mut current = self.current.write().await;
        // Another request may have refreshed them while this one waited for the lock.
        if let Some(credentials) = current.as_ref().filter(|c| is_fresh(c)) {
            return Ok(credentials.clone());
        }
        let credentials = self.provider.provide_credentials().await?;
        *current = Some(credentials.clone());
        Ok(credentials)
    }
}

fn is_fresh(credentials: &Credentials) -> bool {
    match credentials.expiry() {
        None => true,
        Some(expiry) => expiry > SystemTime::now() + REFRESH_BEFORE_EXPIRY,
    }
}

/// The parts of an HTTP request that SigV4 covers.
#[derive(Debug, Clone, Copy)]
pub struct SignableParts<'a> {
    pub method: &'a str,
    /// The full URL exactly as it will be sent, path already percent-encoded.
    pub url: &'a str,
    /// Headers to sign; `host` must be among them, with the value the client will send.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Where and when a signature is valid.
#[derive(Debug, Clone, Copy)]
pub struct SigningScope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

/// Signs a request and returns the headers to add: `x-amz-date`, `authorization`, and
/// `x-amz-security-token` when the credentials carry a session token (it is signed
/// too). Paths are double-encoded in the canonical request, as for every AWS service
/// but S3. Errors never contain the credentials.
pub fn sign(credentials: &Credentials, scope: SigningScope<'_>, parts: SignableParts<'_>) -> Result<Vec<(&'static str, String)>, String> {
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(scope.time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("could not sign the request: {e}"))?
        .into();
    let request = SignableRequest::new(parts.method, parts.url, parts.headers.iter().copied(), SignableBody::Bytes(parts.body))
        .map_err(|e| format!("could not sign the request: {e}"))?;
    let (instructions, _signature) = sigv4_sign(request, &params).map_err(|e| format!("could not sign the request: {e}"))?.into_parts();
    let (headers, _params) = instructions.into_parts();
    Ok(headers.into_iter().map(|h| (h.name(), h.value().to_owned())).collect())
}
