// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! DynamoDB: one item per event in the seed's schema, written with BatchWriteItem, and the
//! seed's query of a camera's events between two times.
//!
//! Numbers go to DynamoDB as decimal text. They are written with Rust's shortest round-trip
//! formatting, so a confidence of 0.87 is stored as exactly "0.87", not as the binary float's
//! long expansion.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::Value;

use crate::CAT;
use crate::aws::{self, Attempts, AwsClients, DynamoDbSettings};
use crate::delivery::{DeliveryError, Destination, DestinationContext, Event};

/// BatchWriteItem takes at most 25 items per call (service limit).
pub const MAX_BATCH_WRITE_ITEMS: usize = 25;
/// Events per delivery: a few BatchWriteItem calls.
pub const DYNAMODB_MAX_BATCH: usize = 100;
/// An item is at most 400 KB (service limit). The envelope's JSON is a close upper bound of the
/// item's size, since the item holds the same names and values.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// The global secondary index the seed's query runs on.
pub const CAMERA_INDEX: &str = "camera_id-ts_ms-index";

type Item = HashMap<String, AttributeValue>;

/// `value` as DynamoDB number text: exact decimal, shortest form that reads back the same.
pub fn number_text(value: f64) -> Result<String, String> {
    if !value.is_finite() {
        return Err(format!("{value} cannot be stored as a DynamoDB number"));
    }
    let text = value.to_string();
    // DynamoDB keeps 38 significant digits; very large or small values need the exponent form.
    let digits = text.trim_start_matches(['-', '0', '.']).replace('.', "");
    if digits.trim_end_matches('0').len() <= 38 && text.len() <= 40 {
        Ok(text)
    } else {
        Ok(format!("{value:e}"))
    }
}

/// A JSON value as an attribute: strings S, numbers N, booleans BOOL, null NULL, arrays L,
/// objects M.
pub fn attribute(value: &Value) -> Result<AttributeValue, String> {
    Ok(match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) if n.is_f64() => {
            AttributeValue::N(number_text(n.as_f64().unwrap_or(f64::NAN))?)
        }
        // Integers are exact as serde_json prints them.
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(values) => {
            AttributeValue::L(values.iter().map(attribute).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), attribute(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// An attribute back as JSON, numbers read from their exact text.
pub fn json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => {
            serde_json::from_str(n).unwrap_or_else(|_| Value::String(n.clone()))
        }
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::L(values) => Value::Array(values.iter().map(json).collect()),
        AttributeValue::M(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
        _ => Value::Null,
    }
}

/// A stored item as one JSON object.
pub fn item_json(item: &Item) -> Value {
    let mut names: Vec<_> = item.keys().collect();
    names.sort();
    Value::Object(
        names
            .into_iter()
            .map(|k| (k.clone(), json(&item[k])))
            .collect(),
    )
}

/// The item of `event`; `expires_at_s` is the `ttl` attribute, if any.
pub fn item(event: &Event, expires_at_s: Option<u64>) -> Result<Item, String> {
    let envelope = &event.envelope;
    let payload = &envelope.payload;
    let s = |text: &str| AttributeValue::S(text.to_string());
    let n = |number: u64| AttributeValue::N(number.to_string());

    let mut item = HashMap::from([
        ("event_id".to_string(), s(&envelope.event_id)),
        ("ts_ms".to_string(), n(payload.ts_ms)),
        ("camera_id".to_string(), s(&envelope.camera_id)),
        ("producer".to_string(), s(&envelope.producer)),
        ("type".to_string(), s(&payload.event_type)),
        ("label".to_string(), s(&payload.label)),
        (
            "conf".to_string(),
            AttributeValue::N(number_text(payload.conf)?),
        ),
        (
            "bbox".to_string(),
            AttributeValue::L(payload.bbox.iter().map(|v| n(u64::from(*v))).collect()),
        ),
        (
            "extras".to_string(),
            attribute(&Value::Object(payload.extras.clone()))?,
        ),
    ]);
    if let Some(snapshot) = &envelope.snapshot {
        item.insert("snapshot_key".into(), s(&snapshot.key));
    }
    if let Some(expires_at) = expires_at_s {
        item.insert("ttl".into(), n(expires_at));
    }
    Ok(item)
}

/// The primary key of an item, to match the UnprocessedItems of a reply with our requests.
fn key_of(item: &Item) -> Option<(String, String)> {
    match (item.get("event_id"), item.get("ts_ms")) {
        (Some(AttributeValue::S(id)), Some(AttributeValue::N(ts))) => {
            Some((id.clone(), ts.clone()))
        }
        _ => None,
    }
}

fn unix_now_s() -> u64 {
    crate::envelope::unix_now_ms() / 1000
}

pub struct DynamoDbDestination {
    clients: Arc<AwsClients>,
    settings: DynamoDbSettings,
    until_delivered: bool,
    context: Option<DestinationContext>,
}

impl DynamoDbDestination {
    /// Network-free: the client is built by the first delivery.
    pub fn new(settings: DynamoDbSettings) -> Self {
        DynamoDbDestination {
            clients: aws::clients(&settings.connection),
            settings,
            until_delivered: false,
            context: None,
        }
    }

    /// Retries retryable failures until they succeed, as a sink with a spool wants.
    pub fn retry_until_delivered(mut self, on: bool) -> Self {
        self.until_delivered = on;
        self
    }

    /// Writes `items` (index into the batch, item) in one BatchWriteItem call, then again those
    /// the service left unprocessed or the whole call when it failed in a retryable way.
    async fn write(
        &self,
        mut pending: Vec<(usize, Item)>,
        results: &mut [Result<(), DeliveryError>],
    ) {
        let table = &self.settings.table;
        let client = self.clients.dynamodb().await;

        let mut attempts = Attempts::new(self.settings.connection.retry, self.until_delivered);
        loop {
            let requests = pending.iter().filter_map(|(_, item)| {
                let put = PutRequest::builder()
                    .set_item(Some(item.clone()))
                    .build()
                    .ok()?;
                Some(WriteRequest::builder().put_request(put).build())
            });
            let sent = client
                .batch_write_item()
                .request_items(table, requests.collect())
                .send()
                .await;

            let (reason, retryable) = match sent {
                Ok(output) => {
                    let unprocessed: Vec<(String, String)> = output
                        .unprocessed_items()
                        .and_then(|tables| tables.get(table))
                        .into_iter()
                        .flatten()
                        .filter_map(|request| key_of(request.put_request()?.item()))
                        .collect();
                    let (again, written): (Vec<_>, Vec<_>) =
                        pending.into_iter().partition(|(_, item)| {
                            key_of(item).is_some_and(|key| unprocessed.contains(&key))
                        });
                    for (i, _) in written {
                        results[i] = Ok(());
                    }
                    pending = again;
                    if pending.is_empty() {
                        return;
                    }
                    (format!("{} items unprocessed", pending.len()), true)
                }
                Err(err) => {
                    let failure = aws::call_failure(&err);
                    (failure.message, failure.retryable)
                }
            };

            let call = format!("DynamoDB table '{table}': BatchWriteItem");
            let wait = super::after_failure(
                &mut attempts,
                self.context.as_ref(),
                pending.len(),
                &call,
                (&reason, retryable),
            );
            let wait = match wait {
                Ok(wait) => wait,
                Err(message) => {
                    return super::fail_all(results, pending.iter().map(|(i, _)| *i), &message);
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Splits items into BatchWriteItem calls of at most `max` items. A call may not hold the same
/// key twice, so a repeated key starts a new call.
pub fn plan_calls(items: Vec<(usize, Item)>, max: usize) -> Vec<Vec<(usize, Item)>> {
    let mut calls: Vec<Vec<(usize, Item)>> = Vec::new();
    for (i, item) in items {
        let key = key_of(&item);
        let full = calls.last().is_none_or(|call| {
            call.len() >= max || call.iter().any(|(_, other)| key_of(other) == key)
        });
        if full {
            calls.push(Vec::new());
        }
        if let Some(call) = calls.last_mut() {
            call.push((i, item));
        }
    }
    calls
}

impl Destination for DynamoDbDestination {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    fn attach(&mut self, context: DestinationContext) {
        self.context = Some(context);
    }

    async fn deliver(&mut self, batch: &[Arc<Event>]) -> Vec<Result<(), DeliveryError>> {
        let table = &self.settings.table;
        let expires_at = (self.settings.ttl_days > 0)
            .then(|| unix_now_s() + u64::from(self.settings.ttl_days) * 24 * 3600);

        let mut results = vec![Err(DeliveryError::new("not sent")); batch.len()];
        let mut items = Vec::with_capacity(batch.len());
        for (i, event) in batch.iter().enumerate() {
            if event.json.len() > MAX_ITEM_BYTES {
                results[i] = Err(DeliveryError::new(format!(
                    "DynamoDB table '{table}': the event is {} bytes, over the item limit of \
                     {MAX_ITEM_BYTES}",
                    event.json.len()
                )));
                continue;
            }
            match item(event, expires_at) {
                Ok(item) => items.push((i, item)),
                Err(err) => {
                    results[i] = Err(DeliveryError::new(format!(
                        "DynamoDB table '{table}': the event cannot be stored: {err}"
                    )))
                }
            }
        }

        let count = items.len();
        for call in plan_calls(items, MAX_BATCH_WRITE_ITEMS) {
            self.write(call, &mut results).await;
        }
        let failed = results.iter().filter(|r| r.is_err()).count();
        gst::info!(
            CAT,
            "DynamoDB table '{table}': {} of {count} items written, {failed} dead-lettered",
            batch.len().saturating_sub(failed)
        );
        results
    }
}

/// The events of `camera_id` with `start_ts_ms <= ts_ms <= end_ts_ms`, newest first, at most
/// `limit`, through the index `camera_id-ts_ms-index`. Items whose `ttl` has passed are left out:
/// DynamoDB deletes expired items only eventually.
pub async fn query_by_camera(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    camera_id: &str,
    start_ts_ms: u64,
    end_ts_ms: u64,
    limit: usize,
) -> Result<Vec<Item>, String> {
    let now = unix_now_s();
    let expired = |item: &Item| match item.get("ttl") {
        Some(AttributeValue::N(ttl)) => ttl.parse::<u64>().is_ok_and(|ttl| ttl <= now),
        _ => false,
    };

    let mut events = Vec::new();
    let mut start_key = None;
    while events.len() < limit {
        let page_limit = i32::try_from(limit - events.len()).unwrap_or(i32::MAX);
        let output = client
            .query()
            .table_name(table)
            .index_name(CAMERA_INDEX)
            .key_condition_expression("camera_id = :camera AND ts_ms BETWEEN :start AND :end")
            .expression_attribute_values(":camera", AttributeValue::S(camera_id.into()))
            .expression_attribute_values(":start", AttributeValue::N(start_ts_ms.to_string()))
            .expression_attribute_values(":end", AttributeValue::N(end_ts_ms.to_string()))
            .scan_index_forward(false)
            .limit(page_limit)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|err| {
                format!(
                    "DynamoDB table '{table}': Query on {CAMERA_INDEX} failed: {}",
                    aws::call_failure(&err).message
                )
            })?;

        events.extend(output.items().iter().filter(|item| !expired(item)).cloned());
        start_key = output.last_evaluated_key().cloned();
        if start_key.is_none() {
            break;
        }
    }
    events.truncate(limit);
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::Detection;
    use crate::envelope::{Envelope, SnapshotRef};
    use serde_json::json;

    #[test]
    fn numbers_are_exact_decimals() {
        assert_eq!(number_text(0.87).unwrap(), "0.87");
        assert_eq!(number_text(1.0).unwrap(), "1");
        assert_eq!(number_text(-0.125).unwrap(), "-0.125");
        assert_eq!(number_text(1e300).unwrap(), "1e300");
        assert_eq!(number_text(1.5e-200).unwrap(), "1.5e-200");
        assert!(number_text(f64::NAN).is_err());
        assert!(number_text(f64::INFINITY).is_err());
    }

    #[test]
    fn extras_become_typed_attributes() {
        let value = json!({"s": "x", "n": 0.92, "i": 7, "b": true, "z": null, "l": [1, "a"],
                           "m": {"k": 2.5}});
        let AttributeValue::M(map) = attribute(&value).unwrap() else {
            panic!("not a map");
        };
        assert_eq!(map["s"], AttributeValue::S("x".into()));
        assert_eq!(map["n"], AttributeValue::N("0.92".into()));
        assert_eq!(map["i"], AttributeValue::N("7".into()));
        assert_eq!(map["b"], AttributeValue::Bool(true));
        assert_eq!(map["z"], AttributeValue::Null(true));
        assert_eq!(
            map["l"],
            AttributeValue::L(vec![
                AttributeValue::N("1".into()),
                AttributeValue::S("a".into())
            ])
        );
        assert_eq!(
            map["m"],
            AttributeValue::M(HashMap::from([(
                "k".into(),
                AttributeValue::N("2.5".into())
            )]))
        );
        assert_eq!(json(&AttributeValue::M(map)), value);
    }

    fn event(label: &str, ts_ms: u64) -> Event {
        let detection = Detection {
            label: label.into(),
            event_type: "weapon".into(),
            conf: 0.87,
            bbox: [1, 2, 3, 4],
            extras: json!({"text": "ABC"}).as_object().unwrap().clone(),
        };
        Event::new(Envelope::new("cam1", "p", ts_ms, 1000, detection), None)
    }

    #[test]
    fn item_follows_the_seed_schema() {
        let mut event = event("knife", 1_697_123_456_789);
        event.envelope.snapshot = Some(SnapshotRef {
            bucket: Some("b".into()),
            key: "snapshots/cam1/1697123456789.jpg".into(),
            url: None,
        });
        let item = item(&event, Some(1_700_000_000)).unwrap();
        assert_eq!(item["ts_ms"], AttributeValue::N("1697123456789".into()));
        assert_eq!(item["conf"], AttributeValue::N("0.87".into()));
        assert_eq!(item["type"], AttributeValue::S("weapon".into()));
        assert_eq!(item["ttl"], AttributeValue::N("1700000000".into()));
        assert_eq!(
            item["snapshot_key"],
            AttributeValue::S("snapshots/cam1/1697123456789.jpg".into())
        );
        let without_ttl = super::item(&event, None).unwrap();
        assert!(!without_ttl.contains_key("ttl"));
    }

    #[test]
    fn calls_hold_at_most_25_distinct_keys() {
        let mut items: Vec<_> = (0..60)
            .map(|i| (i, item(&event("a", i as u64 * 1000), None).unwrap()))
            .collect();
        // The same event twice in a row must not share a call.
        items.insert(3, (60, items[2].1.clone()));
        let sizes: Vec<_> = plan_calls(items, MAX_BATCH_WRITE_ITEMS)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![3, 25, 25, 8]);
    }
}
