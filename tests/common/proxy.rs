// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! A loopback HTTP proxy between the SDK and the emulator that records every request it
//! forwards: method, path, `X-Amz-Target` and body. Bytes pass through unchanged.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// `Kinesis_20131202.PutRecords`, `DynamoDB_20120810.BatchWriteItem`; none for S3.
    pub target: Option<String>,
    pub body: Vec<u8>,
}

pub struct Proxy {
    pub endpoint: String,
    requests: Arc<Mutex<Vec<Request>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());

        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        forward(client, server, recorded).await;
                    }
                });
            }
        });
        Proxy {
            endpoint,
            requests,
            _runtime: runtime,
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests whose `X-Amz-Target` ends with `.{operation}`.
    pub fn calls(&self, operation: &str) -> Vec<Request> {
        let suffix = format!(".{operation}");
        self.requests()
            .into_iter()
            .filter(|r| r.target.as_deref().is_some_and(|t| t.ends_with(&suffix)))
            .collect()
    }
}

async fn forward(client: TcpStream, server: TcpStream, recorded: Arc<Mutex<Vec<Request>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();

    let upstream = async move {
        let mut parser = Parser::default();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let n = match client_read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for request in parser.feed(&chunk[..n]) {
                recorded.lock().unwrap().push(request);
            }
            if server_write.write_all(&chunk[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Splits a client's byte stream into HTTP/1.1 requests with a Content-Length body (what the
/// SDK sends). A chunked body stops the parsing of that connection, not the forwarding.
#[derive(Default)]
struct Parser {
    buffer: Vec<u8>,
    given_up: bool,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Request> {
        if self.given_up {
            return Vec::new();
        }
        self.buffer.extend_from_slice(bytes);

        let mut requests = Vec::new();
        while let Some(head_end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&self.buffer[..head_end]).to_string();
            let mut lines = head.split("\r\n");
            let mut request_line = lines.next().unwrap_or_default().split(' ');
            let method = request_line.next().unwrap_or_default().to_string();
            let path = request_line.next().unwrap_or_default().to_string();

            let mut length = 0;
            let mut target = None;
            for line in lines {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().unwrap_or(0),
                    "x-amz-target" => target = Some(value.to_string()),
                    "transfer-encoding" if value.contains("chunked") => self.given_up = true,
                    _ => (),
                }
            }
            if self.given_up {
                break;
            }
            let body_start = head_end + 4;
            if self.buffer.len() < body_start + length {
                break;
            }
            let body = self.buffer[body_start..body_start + length].to_vec();
            self.buffer.drain(..body_start + length);
            requests.push(Request {
                method,
                path,
                target,
                body,
            });
        }
        requests
    }
}
