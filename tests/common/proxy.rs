// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! A loopback HTTP/1.1 proxy between the SDK and the emulator. It parses each request, forwards
//! it on a fresh upstream connection, reads the whole response and records both. A
//! [`FaultPlan`], changed by the test while it runs, makes it misbehave the way a real service or
//! network does: failed records in a PutRecords reply, unprocessed BatchWriteItem items, error
//! replies, requests never answered, reset connections, a trickling reply.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the requests it sees; every field off by default.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Share (0..=1) of PutRecords entries answered with ProvisionedThroughputExceededException
    /// and not forwarded; the others are stored and keep the emulator's SequenceNumber.
    pub fail_records: f64,
    /// Share (0..=1) of BatchWriteItem items returned as UnprocessedItems and not forwarded.
    pub unprocess_items: f64,
    /// Requests answered with this status and error code, not forwarded.
    pub reply: Option<(u16, &'static str)>,
    /// Requests read and never answered.
    pub blackhole: bool,
    /// Connections reset as soon as a request arrives.
    pub reset: bool,
    /// The reply is written one byte per this interval.
    pub trickle: Option<Duration>,
    /// Only requests whose `X-Amz-Target` or path contains this are affected; none = all.
    pub only: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// `Kinesis_20131202.PutRecords`, `DynamoDB_20120810.BatchWriteItem`; none for S3.
    pub target: Option<String>,
    pub body: Vec<u8>,
    head: Vec<(String, String)>,
}

impl Request {
    /// The JSON body, `Null` when it is not JSON.
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A request as the SDK sent it, with what the client got back.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Request,
    /// 0 when no reply was sent (never answered, reset, emulator down).
    pub status: u16,
    pub response: Vec<u8>,
    /// The upstream the request was meant for.
    pub upstream: String,
}

impl Exchange {
    /// The JSON reply, `Null` when it is not JSON.
    pub fn response_json(&self) -> Value {
        serde_json::from_slice(&self.response).unwrap_or(Value::Null)
    }
}

pub struct Proxy {
    pub endpoint: String,
    pub plan: Arc<Mutex<FaultPlan>>,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    upstream: Arc<Mutex<String>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());

        let proxy = Proxy {
            endpoint,
            plan: Arc::default(),
            exchanges: Arc::default(),
            upstream: Arc::new(Mutex::new(host_port(upstream))),
            _runtime: runtime,
        };
        let shared = Connection {
            plan: proxy.plan.clone(),
            exchanges: proxy.exchanges.clone(),
            upstream: proxy.upstream.clone(),
        };
        proxy._runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(shared.clone().serve(client));
            }
        });
        proxy
    }

    /// Sends later requests to another emulator.
    pub fn set_upstream(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = host_port(upstream);
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        *self.plan.lock().unwrap() = plan;
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.exchanges().into_iter().map(|e| e.request).collect()
    }

    /// The exchanges whose `X-Amz-Target` ends with `.{operation}`.
    pub fn exchanges_of(&self, operation: &str) -> Vec<Exchange> {
        let suffix = format!(".{operation}");
        self.exchanges()
            .into_iter()
            .filter(|e| (e.request.target.as_deref()).is_some_and(|t| t.ends_with(&suffix)))
            .collect()
    }

    /// The requests whose `X-Amz-Target` ends with `.{operation}`.
    pub fn calls(&self, operation: &str) -> Vec<Request> {
        self.exchanges_of(operation)
            .into_iter()
            .map(|e| e.request)
            .collect()
    }
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

#[derive(Clone)]
struct Connection {
    plan: Arc<Mutex<FaultPlan>>,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    upstream: Arc<Mutex<String>>,
}

impl Connection {
    async fn serve(self, mut client: TcpStream) {
        let mut reader = Reader::default();
        while let Some(request) = reader.request(&mut client).await {
            let plan = self.plan.lock().unwrap().clone();
            let upstream = self.upstream.lock().unwrap().clone();
            let affected = plan.only.as_ref().is_none_or(|only| {
                request.path.contains(only.as_str())
                    || request
                        .target
                        .as_ref()
                        .is_some_and(|t| t.contains(only.as_str()))
            });
            let plan = if affected { plan } else { FaultPlan::default() };
            let close = (request.head.iter()).any(|(name, value)| {
                name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            });

            if plan.reset {
                self.record(&upstream, request, 0, Vec::new());
                let _ = client.set_zero_linger();
                return;
            }
            if plan.blackhole {
                self.record(&upstream, request, 0, Vec::new());
                // Never answered: read whatever comes until the client gives up.
                let mut sink = vec![0; 4096];
                while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            let (status, head, body) = match plan.reply {
                Some((status, code)) => error_reply(status, code),
                None => {
                    match forward(&upstream, &request, &plan).await {
                        Some(reply) => reply,
                        None => {
                            // The emulator is down: the client sees its connection close.
                            self.record(&upstream, request, 0, Vec::new());
                            return;
                        }
                    }
                }
            };
            self.record(&upstream, request, status, body.clone());

            let mut bytes = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
            for (name, value) in head {
                bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
            bytes.extend_from_slice(&body);
            let written = match plan.trickle {
                Some(interval) => {
                    let mut result = Ok(());
                    for byte in bytes {
                        result = client.write_all(&[byte]).await;
                        if result.is_err() {
                            break;
                        }
                        tokio::time::sleep(interval).await;
                    }
                    result
                }
                None => client.write_all(&bytes).await,
            };
            if written.is_err() || close {
                return;
            }
        }
    }

    fn record(&self, upstream: &str, request: Request, status: u16, response: Vec<u8>) {
        let upstream = upstream.to_string();
        self.exchanges.lock().unwrap().push(Exchange {
            request,
            status,
            response,
            upstream,
        });
    }
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A reply in the AWS JSON protocols' error shape.
fn error_reply(status: u16, code: &str) -> Reply {
    let body = json!({"__type": code, "message": "injected by the test proxy"});
    let head = vec![
        ("content-type".into(), "application/x-amz-json-1.1".into()),
        ("x-amzn-errortype".into(), code.into()),
    ];
    (status, head, body.to_string().into_bytes())
}

fn json_reply(body: &Value) -> Reply {
    let head = vec![("content-type".into(), "application/x-amz-json-1.1".into())];
    (200, head, body.to_string().into_bytes())
}

/// Sends `request` upstream, less what `plan` fails, and merges the failures into the reply.
/// `None` when the upstream cannot be reached or hangs up.
async fn forward(upstream: &str, request: &Request, plan: &FaultPlan) -> Option<Reply> {
    let operation = request.target.as_deref().unwrap_or_default();
    let mut body = request.body.clone();
    let mut failed_records = Vec::new();
    let mut unprocessed = None;

    if operation.ends_with(".PutRecords") && plan.fail_records > 0.0 {
        let mut parsed: Value = serde_json::from_slice(&body).ok()?;
        let records = parsed["Records"].as_array()?.clone();
        let (fail, keep): (Vec<_>, Vec<_>) = (0..records.len())
            .map(|i| (i, fastrand::f64() < plan.fail_records))
            .partition(|(_, fail)| *fail);
        failed_records = fail.into_iter().map(|(i, _)| i).collect();
        if keep.is_empty() {
            let entries: Vec<Value> = records.iter().map(|_| throttled_record()).collect();
            let count = entries.len();
            return Some(json_reply(
                &json!({"FailedRecordCount": count, "Records": entries}),
            ));
        }
        parsed["Records"] = keep.iter().map(|(i, _)| records[*i].clone()).collect();
        body = parsed.to_string().into_bytes();
    }
    if operation.ends_with(".BatchWriteItem") && plan.unprocess_items > 0.0 {
        let mut parsed: Value = serde_json::from_slice(&body).ok()?;
        let tables = parsed["RequestItems"].as_object()?.clone();
        let mut left = serde_json::Map::new();
        let mut kept = serde_json::Map::new();
        for (table, items) in tables {
            let (skip, keep): (Vec<Value>, Vec<Value>) = (items.as_array()?.iter().cloned())
                .partition(|_| fastrand::f64() < plan.unprocess_items);
            if !skip.is_empty() {
                left.insert(table.clone(), Value::Array(skip));
            }
            if !keep.is_empty() {
                kept.insert(table, Value::Array(keep));
            }
        }
        if kept.is_empty() {
            return Some(json_reply(&json!({"UnprocessedItems": left})));
        }
        parsed["RequestItems"] = Value::Object(kept);
        body = parsed.to_string().into_bytes();
        unprocessed = Some(left);
    }

    let mut server = TcpStream::connect(upstream).await.ok()?;
    let mut bytes = format!("{} {} HTTP/1.1\r\n", request.method, request.path).into_bytes();
    for (name, value) in &request.head {
        if !matches!(
            name.to_ascii_lowercase().as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    bytes.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(b"connection: close\r\n\r\n");
    bytes.extend_from_slice(&body);
    server.write_all(&bytes).await.ok()?;

    let (status, head, mut reply) = Reader::default()
        .response(&mut server, &request.method)
        .await?;
    if !failed_records.is_empty() && status == 200 {
        let mut parsed: Value = serde_json::from_slice(&reply).ok()?;
        let mut stored = parsed["Records"].as_array()?.clone().into_iter();
        let total = stored.len() + failed_records.len();
        let merged: Vec<Value> = (0..total)
            .map(|i| match failed_records.contains(&i) {
                true => throttled_record(),
                false => stored.next().unwrap_or_else(throttled_record),
            })
            .collect();
        let failed = merged
            .iter()
            .filter(|r| r.get("ErrorCode").is_some())
            .count();
        parsed["Records"] = Value::Array(merged);
        parsed["FailedRecordCount"] = json!(failed);
        reply = parsed.to_string().into_bytes();
    }
    if let Some(left) = unprocessed
        && status == 200
    {
        let mut parsed: Value = serde_json::from_slice(&reply).ok()?;
        parsed["UnprocessedItems"] = Value::Object(left);
        reply = parsed.to_string().into_bytes();
    }
    Some((status, head, reply))
}

fn throttled_record() -> Value {
    json!({
        "ErrorCode": "ProvisionedThroughputExceededException",
        "ErrorMessage": "Rate exceeded for shard (injected by the test proxy)",
    })
}

/// Reads HTTP/1.1 messages off a stream: head, then a Content-Length or chunked body.
#[derive(Default)]
struct Reader {
    buffer: Vec<u8>,
}

impl Reader {
    async fn fill(&mut self, stream: &mut (impl AsyncRead + Unpin)) -> Option<()> {
        let mut chunk = vec![0; 64 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }

    /// The start line and the headers.
    async fn head(
        &mut self,
        stream: &mut (impl AsyncRead + Unpin),
    ) -> Option<(String, Vec<(String, String)>)> {
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buffer[..end]).to_string();
                self.buffer.drain(..end + 4);
                let mut lines = text.split("\r\n");
                let start = lines.next().unwrap_or_default().to_string();
                let headers = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
                    .collect();
                return Some((start, headers));
            }
            self.fill(stream).await?;
        }
    }

    async fn exact(&mut self, stream: &mut (impl AsyncRead + Unpin), n: usize) -> Option<Vec<u8>> {
        while self.buffer.len() < n {
            self.fill(stream).await?;
        }
        Some(self.buffer.drain(..n).collect())
    }

    async fn line(&mut self, stream: &mut (impl AsyncRead + Unpin)) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..end]).to_string();
                self.buffer.drain(..end + 2);
                return Some(line);
            }
            self.fill(stream).await?;
        }
    }

    /// The body the headers announce; `to_end` reads until the peer closes when they announce
    /// nothing (a response without length).
    async fn body(
        &mut self,
        stream: &mut (impl AsyncRead + Unpin),
        headers: &[(String, String)],
        to_end: bool,
    ) -> Option<Vec<u8>> {
        let header = |wanted: &str| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
                .map(|(_, value)| value.as_str())
        };
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let size = self.line(stream).await?;
                let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
                if size == 0 {
                    while !self.line(stream).await?.is_empty() {}
                    return Some(body);
                }
                body.extend(self.exact(stream, size).await?);
                self.exact(stream, 2).await?;
            }
        }
        if let Some(length) = header("content-length") {
            return self.exact(stream, length.parse().ok()?).await;
        }
        if to_end {
            while self.fill(stream).await.is_some() {}
        }
        Some(std::mem::take(&mut self.buffer))
    }

    async fn request(&mut self, stream: &mut TcpStream) -> Option<Request> {
        let (start, head) = self.head(stream).await?;
        let mut parts = start.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let body = self.body(stream, &head, false).await?;
        let target = (head.iter())
            .find(|(name, _)| name.eq_ignore_ascii_case("x-amz-target"))
            .map(|(_, value)| value.clone());
        Some(Request {
            method,
            path,
            target,
            body,
            head,
        })
    }

    async fn response(&mut self, stream: &mut TcpStream, method: &str) -> Option<Reply> {
        let (start, head) = self.head(stream).await?;
        let status: u16 = start.split(' ').nth(1)?.parse().ok()?;
        let body = match method == "HEAD" || status == 204 || status == 304 {
            true => Vec::new(),
            false => self.body(stream, &head, true).await?,
        };
        let head = head
            .into_iter()
            .filter(|(name, _)| {
                !matches!(
                    name.to_ascii_lowercase().as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                )
            })
            .collect();
        Some((status, head, body))
    }
}

/// Standard base64 (what Kinesis record data travels as), decoded; `None` if malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET.iter().position(|a| *a == byte)? as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The event ids of the envelopes in a PutRecords request body, in order.
pub fn put_records_ids(body: &[u8]) -> Vec<Option<String>> {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let records = parsed["Records"].as_array().cloned().unwrap_or_default();
    records
        .iter()
        .map(|record| {
            let data = base64_decode(record["Data"].as_str()?)?;
            let envelope: Value = serde_json::from_slice(&data).ok()?;
            envelope["event_id"].as_str().map(str::to_string)
        })
        .collect()
}

/// The event ids of the items in a BatchWriteItem request or UnprocessedItems map of `table`.
pub fn batch_write_ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|request| request["PutRequest"]["Item"]["event_id"]["S"].as_str())
        .map(str::to_string)
        .collect()
}
