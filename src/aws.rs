// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What the AWS destinations share: their settings (properties, then the seed's environment
//! variables, then defaults), one set of SDK clients per connection configuration, retry backoff
//! and the classification of SDK errors.
//!
//! Nothing here touches the network until a destination task awaits a client: resolving the
//! region or credentials may wait on instance metadata, and that must never happen inside a
//! state change.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kinesis::config::Credentials;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::sync::OnceCell;

/// The SDK behaviour is pinned so that an SDK upgrade cannot change retries or timeouts unseen.
pub fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_11_17()
}

pub const DEFAULT_FORCE_PATH_STYLE: bool = false;
pub const DEFAULT_REQUEST_TIMEOUT_MS: u32 = 15_000;
pub const MAX_REQUEST_TIMEOUT_MS: u32 = 3_600_000;
/// Attempts of one request (the first one included), as awss3sink counts them.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 5;
pub const MAX_RETRY_ATTEMPTS: u32 = 100;
pub const DEFAULT_RETRY_BACKOFF_MS: u32 = 100;
pub const MAX_RETRY_BACKOFF_MS: u32 = 60_000;
/// No single wait between attempts grows beyond this (`retry-max-backoff`), however many
/// attempts are allowed.
pub const DEFAULT_RETRY_MAX_BACKOFF_MS: u32 = 30_000;
pub const MAX_RETRY_MAX_BACKOFF_MS: u32 = 3_600_000;
/// A connection that takes longer than this is not going to work.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// PutRecords takes at most 500 records per call (service limit).
pub const MAX_KINESIS_BATCH_SIZE: u32 = 500;
pub const DEFAULT_KINESIS_BATCH_SIZE: u32 = MAX_KINESIS_BATCH_SIZE;
pub const DEFAULT_KINESIS_LINGER_MS: u32 = 200;
pub const MAX_KINESIS_LINGER_MS: u32 = 60_000;
/// A record's data plus partition key is at most 1 MiB (service limit).
pub const MAX_KINESIS_RECORD_BYTES: u32 = 1024 * 1024;
pub const DEFAULT_KINESIS_MAX_RECORD_BYTES: u32 = MAX_KINESIS_RECORD_BYTES;

pub const DEFAULT_S3_PREFIX: &str = "snapshots";
pub const DEFAULT_PRESIGN_EXPIRY_S: u32 = 3600;
/// SigV4 presigned URLs live at most 7 days (service limit).
pub const MAX_PRESIGN_EXPIRY_S: u32 = 7 * 24 * 3600;
pub const DEFAULT_JPEG_QUALITY: u32 = 90;

pub const DEFAULT_DYNAMODB_TTL_DAYS: u32 = 30;
pub const MAX_DYNAMODB_TTL_DAYS: u32 = 36_500;

/// The AWS properties of a sink as the user set them; `None` is unset, so that the seed's
/// environment variables and then the defaults can fill in.
#[derive(Clone, Default, PartialEq)]
pub struct AwsProperties {
    pub region: Option<String>,
    pub endpoint_uri: Option<String>,
    pub access_key: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub force_path_style: Option<bool>,
    pub request_timeout_ms: Option<u32>,
    pub retry_attempts: Option<u32>,
    pub retry_backoff_ms: Option<u32>,
    pub retry_max_backoff_ms: Option<u32>,
    pub kinesis_stream: Option<String>,
    pub kinesis_batch_size: Option<u32>,
    pub kinesis_linger_ms: Option<u32>,
    pub kinesis_max_record_bytes: Option<u32>,
    pub s3_bucket: Option<String>,
    pub s3_prefix: Option<String>,
    pub presign_expiry_s: Option<u32>,
    pub dynamodb_table: Option<String>,
    pub dynamodb_ttl_days: Option<u32>,
}

fn redacted(secret: &Option<String>) -> &'static str {
    match secret {
        Some(_) => "<redacted>",
        None => "None",
    }
}

impl fmt::Debug for AwsProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsProperties")
            .field("region", &self.region)
            .field("endpoint_uri", &self.endpoint_uri)
            .field("access_key", &self.access_key)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field("kinesis_stream", &self.kinesis_stream)
            .field("s3_bucket", &self.s3_bucket)
            .field("dynamodb_table", &self.dynamodb_table)
            .finish_non_exhaustive()
    }
}

/// How to reach one service: the key of the client cache.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    /// `None`: the standard region chain.
    pub region: Option<String>,
    /// `None`: the standard `AWS_ENDPOINT_URL` variables, else the service's own endpoint.
    pub endpoint_uri: Option<String>,
    /// `None`: the standard credential chain.
    pub credentials: Option<StaticCredentials>,
    pub force_path_style: bool,
    pub request_timeout_ms: u32,
    pub retry: RetryPolicy,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StaticCredentials {
    pub access_key: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = match &self.credentials {
            Some(c) => format!("static (access key {})", c.access_key),
            None => "standard chain".into(),
        };
        f.debug_struct("Connection")
            .field("region", &self.region)
            .field("endpoint_uri", &self.endpoint_uri)
            .field("credentials", &credentials)
            .field("force_path_style", &self.force_path_style)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("retry", &self.retry)
            .finish()
    }
}

/// How often and how patiently a failed request or a failed part of a batch is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; without a spool only.
    pub attempts: u32,
    pub base_backoff_ms: u32,
    pub max_backoff_ms: u32,
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: the base doubled per attempt, 0.8 to 1.2 jitter
    /// so that many cameras throttled together do not come back together, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = u64::from(self.base_backoff_ms)
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
        let jitter = 0.8 + 0.4 * fastrand::f64();
        Duration::from_millis(doubled)
            .mul_f64(jitter)
            .min(self.max_backoff())
    }

    pub fn max_backoff(&self) -> Duration {
        Duration::from_millis(u64::from(self.max_backoff_ms))
    }
}

/// The attempts of one request, or of what is left of one batch, as a destination makes them.
///
/// Every retry happens here rather than in the SDK (whose own retries are off), so that the same
/// rule holds for a whole call that failed and for the failed part of a batch: retryable
/// failures are sent again with backoff, `attempts` times in all without a spool and until they
/// are delivered with one (the spool keeps them across restarts anyway, so giving up would only
/// lose them); anything else is given up at once.
#[derive(Debug, Clone)]
pub struct Attempts {
    policy: RetryPolicy,
    until_delivered: bool,
    made: u32,
}

impl Attempts {
    pub fn new(policy: RetryPolicy, until_delivered: bool) -> Self {
        Attempts {
            policy,
            until_delivered,
            made: 1,
        }
    }

    /// Attempts made so far, the current one included.
    pub fn made(&self) -> u32 {
        self.made
    }

    /// After a failed attempt: how long to wait before the next one, or `None` to give up.
    pub fn next(&mut self, retryable: bool) -> Option<Duration> {
        if !retryable || (!self.until_delivered && self.made >= self.policy.attempts) {
            return None;
        }
        let wait = self.policy.backoff(self.made);
        self.made = self.made.saturating_add(1);
        Some(wait)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KinesisSettings {
    pub connection: Connection,
    pub stream: String,
    pub batch_size: usize,
    pub linger: Duration,
    pub max_record_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct S3Settings {
    pub connection: Connection,
    pub bucket: String,
    pub prefix: String,
    /// `None`: no presigned URL in the envelope.
    pub presign_expiry: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DynamoDbSettings {
    pub connection: Connection,
    pub table: String,
    /// 0: items never expire.
    pub ttl_days: u32,
}

/// The AWS destinations a sink delivers to; each is on when it has a name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsDestinations {
    pub kinesis: Option<KinesisSettings>,
    pub s3: Option<S3Settings>,
    pub dynamodb: Option<DynamoDbSettings>,
    /// A spool keeps every event until it is delivered: retryable failures are then retried
    /// without an attempt limit. Set by the sink, not by [`resolve`].
    pub spooled: bool,
}

/// The environment, as a function so that tests can pass an explicit map.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A variable's value, or `None` when it is unset or empty.
fn var(env: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|value| !value.trim().is_empty())
}

/// The property if set, else the variable parsed and checked against `min..=max`.
fn number(
    property: Option<u32>,
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    (min, max): (u32, u32),
) -> Result<Option<u32>, String> {
    if property.is_some() {
        return Ok(property);
    }
    let Some(text) = var(env, name) else {
        return Ok(None);
    };
    match text.trim().parse::<u32>() {
        Ok(value) if (min..=max).contains(&value) => Ok(Some(value)),
        _ => Err(format!(
            "Environment variable {name}={text:?} is not a whole number in {min}..={max}"
        )),
    }
}

/// The key prefix of snapshots, in S3 and in `output-dir` alike: `s3-prefix`, else `S3_PREFIX`,
/// else `snapshots`; without leading or trailing slashes, and refused when a segment could climb
/// out of its place (`..`, `.`, empty).
pub fn snapshot_prefix(
    props: &AwsProperties,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let prefix = props
        .s3_prefix
        .clone()
        .or_else(|| var(env, "S3_PREFIX"))
        .unwrap_or_else(|| DEFAULT_S3_PREFIX.into());
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return Err(format!(
            "'s3-prefix' {prefix:?} is not a usable key prefix: segments must not be empty, '.' or '..'"
        ));
    }
    Ok(trimmed.to_string())
}

/// `jpeg-quality`: the property if set, else `S3_JPEG_QUALITY`, else 90.
pub fn jpeg_quality(
    property: Option<u32>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<u32, String> {
    Ok(number(property, env, "S3_JPEG_QUALITY", (0, 100))?.unwrap_or(DEFAULT_JPEG_QUALITY))
}

/// Fills what the properties leave unset from the seed's variables (`KDS_*`, `S3_*`, `DDB_*`)
/// and the defaults. A property always wins over a variable.
pub fn resolve(
    props: &AwsProperties,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<AwsDestinations, String> {
    let credentials = match (&props.access_key, &props.secret_access_key) {
        (Some(access_key), Some(secret_access_key)) => Some(StaticCredentials {
            access_key: access_key.clone(),
            secret_access_key: secret_access_key.clone(),
            session_token: props.session_token.clone(),
        }),
        (None, None) => None,
        _ => {
            return Err(
                "Properties 'access-key' and 'secret-access-key' go together: set both, or \
                 neither to use the standard credential chain"
                    .into(),
            );
        }
    };
    if let Some(uri) = &props.endpoint_uri
        && !(uri.starts_with("http://") || uri.starts_with("https://"))
    {
        return Err(format!(
            "Property 'endpoint-uri' {uri:?} must start with http:// or https://"
        ));
    }

    let connection = |region_var: &str, attempts_var: Option<&str>, backoff_var: Option<&str>| {
        let attempts = match attempts_var {
            Some(name) => number(props.retry_attempts, env, name, (1, MAX_RETRY_ATTEMPTS))?,
            None => props.retry_attempts,
        };
        let backoff = match backoff_var {
            Some(name) => number(props.retry_backoff_ms, env, name, (0, MAX_RETRY_BACKOFF_MS))?,
            None => props.retry_backoff_ms,
        };
        Ok::<_, String>(Connection {
            region: props.region.clone().or_else(|| var(env, region_var)),
            endpoint_uri: props.endpoint_uri.clone(),
            credentials: credentials.clone(),
            force_path_style: props.force_path_style.unwrap_or(DEFAULT_FORCE_PATH_STYLE),
            request_timeout_ms: props
                .request_timeout_ms
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS),
            retry: RetryPolicy {
                attempts: attempts.unwrap_or(DEFAULT_RETRY_ATTEMPTS),
                base_backoff_ms: backoff.unwrap_or(DEFAULT_RETRY_BACKOFF_MS),
                max_backoff_ms: props
                    .retry_max_backoff_ms
                    .unwrap_or(DEFAULT_RETRY_MAX_BACKOFF_MS),
            },
        })
    };

    let mut destinations = AwsDestinations::default();
    if let Some(stream) = props
        .kinesis_stream
        .clone()
        .or_else(|| var(env, "KDS_STREAM_NAME"))
    {
        let batch_size = number(
            props.kinesis_batch_size,
            env,
            "KDS_BATCH_SIZE",
            (1, MAX_KINESIS_BATCH_SIZE),
        )?;
        destinations.kinesis = Some(KinesisSettings {
            connection: connection(
                "KDS_REGION",
                Some("KDS_MAX_RETRIES"),
                Some("KDS_BASE_BACKOFF_MS"),
            )?,
            stream,
            batch_size: batch_size.unwrap_or(DEFAULT_KINESIS_BATCH_SIZE) as usize,
            linger: Duration::from_millis(u64::from(
                props.kinesis_linger_ms.unwrap_or(DEFAULT_KINESIS_LINGER_MS),
            )),
            max_record_bytes: props
                .kinesis_max_record_bytes
                .unwrap_or(DEFAULT_KINESIS_MAX_RECORD_BYTES) as usize,
        });
    }

    if let Some(bucket) = props.s3_bucket.clone().or_else(|| var(env, "S3_BUCKET")) {
        let prefix = snapshot_prefix(props, env)?;
        let expiry = props.presign_expiry_s.unwrap_or(DEFAULT_PRESIGN_EXPIRY_S);
        destinations.s3 = Some(S3Settings {
            connection: connection("S3_REGION", None, None)?,
            bucket,
            prefix,
            presign_expiry: (expiry > 0).then(|| Duration::from_secs(u64::from(expiry))),
        });
    }

    if let Some(table) = props
        .dynamodb_table
        .clone()
        .or_else(|| var(env, "DDB_TABLE_NAME"))
    {
        let ttl_days = number(
            props.dynamodb_ttl_days,
            env,
            "DDB_TTL_DAYS",
            (0, MAX_DYNAMODB_TTL_DAYS),
        )?;
        destinations.dynamodb = Some(DynamoDbSettings {
            connection: connection("DDB_REGION", None, None)?,
            table,
            ttl_days: ttl_days.unwrap_or(DEFAULT_DYNAMODB_TTL_DAYS),
        });
    }
    Ok(destinations)
}

/// The SDK clients of one [`Connection`], built on first use and shared by every sink with the
/// same connection.
pub struct AwsClients {
    connection: Connection,
    sdk: OnceCell<SdkConfig>,
    kinesis: OnceCell<aws_sdk_kinesis::Client>,
    s3: OnceCell<aws_sdk_s3::Client>,
    dynamodb: OnceCell<aws_sdk_dynamodb::Client>,
}

/// Weak, so that the clients of a configuration go away with the last sink using them.
static CLIENTS: LazyLock<Mutex<HashMap<Connection, Weak<AwsClients>>>> =
    LazyLock::new(Mutex::default);

/// The shared clients of `connection`. Cheap and network-free: the clients themselves are built
/// by the first task that asks for one.
pub fn clients(connection: &Connection) -> Arc<AwsClients> {
    let mut cache = CLIENTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(clients) = cache.get(connection).and_then(Weak::upgrade) {
        return clients;
    }

    cache.retain(|_, clients| clients.strong_count() > 0);
    let clients = Arc::new(AwsClients {
        connection: connection.clone(),
        sdk: OnceCell::new(),
        kinesis: OnceCell::new(),
        s3: OnceCell::new(),
        dynamodb: OnceCell::new(),
    });
    cache.insert(connection.clone(), Arc::downgrade(&clients));
    clients
}

impl AwsClients {
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    async fn sdk_config(&self) -> &SdkConfig {
        self.sdk
            .get_or_init(|| load_sdk_config(&self.connection))
            .await
    }

    pub async fn kinesis(&self) -> &aws_sdk_kinesis::Client {
        let sdk = self.sdk_config().await;
        self.kinesis
            .get_or_init(|| async { aws_sdk_kinesis::Client::new(sdk) })
            .await
    }

    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};

        let sdk = self.sdk_config().await;
        self.s3
            .get_or_init(|| async {
                // S3-compatible stores often reject the newer default checksums.
                let config = aws_sdk_s3::config::Builder::from(sdk)
                    .force_path_style(self.connection.force_path_style)
                    .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                    .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
                    .build();
                aws_sdk_s3::Client::from_conf(config)
            })
            .await
    }

    pub async fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        let sdk = self.sdk_config().await;
        self.dynamodb
            .get_or_init(|| async { aws_sdk_dynamodb::Client::new(sdk) })
            .await
    }
}

/// Every timeout set explicitly: with none, a black-holed connection would hold a batch forever.
/// One SDK call is one attempt (see [`Attempts`]), so the operation gets the attempt's time.
pub fn timeout_config(request_timeout_ms: u32) -> TimeoutConfig {
    let attempt = Duration::from_millis(u64::from(request_timeout_ms.max(1)));
    TimeoutConfig::builder()
        .connect_timeout(attempt.min(MAX_CONNECT_TIMEOUT))
        .read_timeout(attempt)
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt)
        .build()
}

async fn load_sdk_config(connection: &Connection) -> SdkConfig {
    // The destinations retry, with one rule for whole calls and failed parts (see `Attempts`);
    // SDK retries under them would multiply the attempts and hide them from the counters.
    let mut loader = aws_config::defaults(behavior_version())
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeout_config(connection.request_timeout_ms));

    if let Some(region) = &connection.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &connection.endpoint_uri {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(credentials) = &connection.credentials {
        loader = loader.credentials_provider(Credentials::new(
            &credentials.access_key,
            &credentials.secret_access_key,
            credentials.session_token.clone(),
            None,
            "kvsinfersink-properties",
        ));
    }
    gst::debug!(
        crate::CAT,
        "Loading the AWS configuration for {connection:?}"
    );
    loader.load().await
}

/// Error codes that mean "later may work": throttling and the service's own trouble.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Whether an error with this code and HTTP status may succeed when sent again. Validation,
/// permission and missing-resource errors may not.
pub fn is_retryable_code(code: Option<&str>, status: Option<u16>) -> bool {
    if code.is_some_and(|code| RETRYABLE_CODES.contains(&code)) {
        return true;
    }
    status.is_some_and(|status| status == 429 || status >= 500)
}

/// A failed SDK call: whether it may succeed later, and the whole cause chain on one line.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailure {
    pub retryable: bool,
    pub message: String,
}

pub fn call_failure<E>(err: &SdkError<E, HttpResponse>) -> CallFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            is_retryable_code(service.err().code(), Some(service.raw().status().as_u16()))
        }
        _ => false,
    };
    let mut message = DisplayErrorContext(err).to_string();
    if let Some(code) = err.code() {
        message = format!("{code}: {message}");
    }
    CallFailure { retryable, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn snapshot_prefix_is_trimmed_and_must_stay_in_place() {
        let with = |prefix: &str| AwsProperties {
            s3_prefix: Some(prefix.into()),
            ..Default::default()
        };
        assert_eq!(
            snapshot_prefix(&AwsProperties::default(), &|_| None).unwrap(),
            "snapshots"
        );
        assert_eq!(snapshot_prefix(&with("/a/b/"), &|_| None).unwrap(), "a/b");
        let env = |name: &str| (name == "S3_PREFIX").then(|| "from-env".to_string());
        assert_eq!(
            snapshot_prefix(&AwsProperties::default(), &env).unwrap(),
            "from-env"
        );
        for bad in ["..", "a/../b", "a//b", "/", "./x"] {
            assert!(snapshot_prefix(&with(bad), &|_| None).is_err(), "{bad}");
        }
    }

    #[test]
    fn variables_fill_unset_properties() {
        let env = env_of(&[
            ("KDS_REGION", "eu-west-1"),
            ("KDS_STREAM_NAME", "events"),
            ("KDS_BATCH_SIZE", "100"),
            ("KDS_MAX_RETRIES", "7"),
            ("KDS_BASE_BACKOFF_MS", "50"),
            ("S3_REGION", "eu-west-2"),
            ("S3_BUCKET", "snaps"),
            ("S3_PREFIX", "/shots/"),
            ("DDB_REGION", "eu-west-3"),
            ("DDB_TABLE_NAME", "events-table"),
            ("DDB_TTL_DAYS", "0"),
        ]);
        let resolved = resolve(&AwsProperties::default(), &env).unwrap();

        let kinesis = resolved.kinesis.unwrap();
        assert_eq!(kinesis.stream, "events");
        assert_eq!(kinesis.batch_size, 100);
        assert_eq!(kinesis.connection.region.as_deref(), Some("eu-west-1"));
        assert_eq!(kinesis.connection.retry.attempts, 7);
        assert_eq!(kinesis.connection.retry.base_backoff_ms, 50);
        assert_eq!(kinesis.linger, Duration::from_millis(200));
        let s3 = resolved.s3.unwrap();
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("snaps", "shots"));
        assert_eq!(s3.connection.region.as_deref(), Some("eu-west-2"));
        assert_eq!(s3.presign_expiry, Some(Duration::from_secs(3600)));
        let dynamodb = resolved.dynamodb.unwrap();
        assert_eq!(dynamodb.table, "events-table");
        assert_eq!(dynamodb.ttl_days, 0);
        assert_eq!(dynamodb.connection.region.as_deref(), Some("eu-west-3"));
        assert_eq!(dynamodb.connection.retry.attempts, DEFAULT_RETRY_ATTEMPTS);
    }

    #[test]
    fn property_wins_over_variable() {
        let env = env_of(&[
            ("KDS_STREAM_NAME", "from-env"),
            ("KDS_BATCH_SIZE", "100"),
            ("KDS_REGION", "eu-west-1"),
            ("S3_JPEG_QUALITY", "40"),
            ("DDB_TTL_DAYS", "3"),
            ("DDB_TABLE_NAME", "table-from-env"),
        ]);
        let props = AwsProperties {
            region: Some("us-east-1".into()),
            kinesis_stream: Some("from-property".into()),
            kinesis_batch_size: Some(500),
            dynamodb_ttl_days: Some(30),
            ..Default::default()
        };
        let resolved = resolve(&props, &env).unwrap();
        let kinesis = resolved.kinesis.unwrap();
        assert_eq!(kinesis.stream, "from-property");
        assert_eq!(kinesis.batch_size, 500);
        assert_eq!(kinesis.connection.region.as_deref(), Some("us-east-1"));
        assert_eq!(resolved.dynamodb.unwrap().ttl_days, 30);
        assert!(resolved.s3.is_none());

        assert_eq!(jpeg_quality(None, &env), Ok(40));
        assert_eq!(jpeg_quality(Some(75), &env), Ok(75));
        assert_eq!(jpeg_quality(None, &env_of(&[])), Ok(90));
    }

    #[test]
    fn bad_variables_and_half_credentials_are_named() {
        let env = env_of(&[("KDS_STREAM_NAME", "s"), ("KDS_BATCH_SIZE", "501")]);
        let err = resolve(&AwsProperties::default(), &env).unwrap_err();
        assert!(
            err.contains("KDS_BATCH_SIZE") && err.contains("1..=500"),
            "{err}"
        );

        let props = AwsProperties {
            access_key: Some("AKID".into()),
            ..Default::default()
        };
        let err = resolve(&props, &env_of(&[])).unwrap_err();
        assert!(err.contains("secret-access-key"), "{err}");
        assert!(jpeg_quality(None, &env_of(&[("S3_JPEG_QUALITY", "x")])).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let props = AwsProperties {
            access_key: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("very-secret-key".into()),
            session_token: Some("very-secret-token".into()),
            kinesis_stream: Some("s".into()),
            ..Default::default()
        };
        let resolved = resolve(&props, &env_of(&[])).unwrap();
        for text in [format!("{props:?}"), format!("{resolved:?}")] {
            assert!(!text.contains("very-secret"), "{text}");
            assert!(text.contains("AKIDEXAMPLE"), "{text}");
        }
    }

    #[test]
    fn same_connection_shares_clients() {
        let connection = Connection {
            region: Some("us-east-1".into()),
            endpoint_uri: None,
            credentials: None,
            force_path_style: false,
            request_timeout_ms: 1000,
            retry: RetryPolicy {
                attempts: 3,
                base_backoff_ms: 10,
                max_backoff_ms: 1000,
            },
        };
        let a = clients(&connection);
        let b = clients(&connection);
        assert!(Arc::ptr_eq(&a, &b));
        let other = clients(&Connection {
            request_timeout_ms: 2000,
            ..connection
        });
        assert!(!Arc::ptr_eq(&a, &other));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            attempts: 10,
            base_backoff_ms: 100,
            max_backoff_ms: 5000,
        };
        for attempt in 1..=4 {
            let nominal = 100.0 * f64::from(1u32 << (attempt - 1));
            let ms = policy.backoff(attempt).as_secs_f64() * 1000.0;
            assert!(
                (0.8 * nominal..=1.2 * nominal).contains(&ms),
                "{attempt}: {ms}"
            );
        }
        assert_eq!(policy.backoff(40), Duration::from_secs(5));
    }

    #[test]
    fn attempts_end_after_the_limit_without_a_spool_and_never_with_one() {
        let policy = RetryPolicy {
            attempts: 3,
            base_backoff_ms: 10,
            max_backoff_ms: 50,
        };
        let mut limited = Attempts::new(policy, false);
        assert!(limited.next(true).is_some());
        assert!(limited.next(true).is_some());
        assert_eq!((limited.next(true), limited.made()), (None, 3));
        assert_eq!(Attempts::new(policy, false).next(false), None);

        let mut spooled = Attempts::new(policy, true);
        for _ in 0..1000 {
            let wait = spooled.next(true).unwrap();
            assert!(wait <= Duration::from_millis(50), "{wait:?}");
        }
        assert_eq!(spooled.next(false), None);
    }

    #[test]
    fn throttling_and_server_errors_are_retryable_validation_is_not() {
        assert!(is_retryable_code(
            Some("ProvisionedThroughputExceededException"),
            Some(400)
        ));
        assert!(is_retryable_code(None, Some(503)));
        assert!(!is_retryable_code(
            Some("ResourceNotFoundException"),
            Some(400)
        ));
        assert!(!is_retryable_code(Some("NoSuchBucket"), Some(404)));
        assert!(!is_retryable_code(Some("AccessDeniedException"), Some(403)));
    }

    #[test]
    fn every_timeout_is_set() {
        let config = timeout_config(2000);
        assert_eq!(config.connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(config.read_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(
            config.operation_attempt_timeout(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(config.operation_timeout(), Some(Duration::from_secs(2)));
    }
}
