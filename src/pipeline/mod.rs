//! The life of a request, top to bottom:
//! find the route → plan attempts → try targets with failover → answer or stream →
//! settle in the ledger.
//!
//! Everything here is plain async code over canonical types; HTTP lives in `app`, wire
//! formats in `dialects` and `providers`. Authentication happens in the front door
//! (the key id arrives in [`Inbound`]); budgets and rate limits will slot in between
//! routing and the first attempt.

mod settle;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

pub use settle::Settlement;
pub use stream::client_stream;

use crate::canonical::{ChatRequest, Dialect};
use crate::config::{Config, ProviderConfig, RouteConfig, TargetConfig};
use crate::error::GatewayError;
use crate::ledger::{LedgerHandle, Outcome, PriceCatalog};
use crate::providers::{Answer, AttemptRequest, Completion, ErrorKind, ItemStream, Provider, StreamItem, UpstreamError};
use crate::routing::{self, Stop};

/// Everything the pipeline needs, built once from a [`Config`].
pub struct Gateway {
    pub config: Arc<Config>,
    providers: BTreeMap<String, (Arc<ProviderConfig>, Arc<Provider>)>,
    prices: Arc<PriceCatalog>,
    ledger: LedgerHandle,
}

/// A decoded request as it leaves the front door.
pub struct Inbound {
    pub request: ChatRequest,
    /// The client's JSON, for passthrough to an upstream of the same dialect.
    pub original: Option<Map<String, Value>>,
    pub front_door: Dialect,
    pub key_id: String,
}

/// Which target answered, for response headers and the ledger.
#[derive(Debug, Clone)]
pub struct Attribution {
    pub route: String,
    pub target: String,
    pub attempts: u32,
    pub simulated: bool,
}

/// A successful request's answer.
pub enum Reply {
    Complete { completion: Completion, attribution: Attribution },
    Stream(StreamReply),
}

/// An established stream: the items read while waiting for the first token, the rest
/// of the upstream stream, and the settlement that records it when it ends.
pub struct StreamReply {
    pub first: Vec<StreamItem>,
    pub rest: ItemStream,
    pub passthrough: bool,
    pub attribution: Attribution,
    pub idle_timeout: Duration,
    pub settlement: Settlement,
}

/// What a successful attempt hands back to the failover loop.
enum Established {
    Complete(Completion),
    Stream { first: Vec<StreamItem>, rest: ItemStream, passthrough: bool, ttft: Duration },
}

impl Gateway {
    pub fn new(config: Arc<Config>, prices: Arc<PriceCatalog>, ledger: LedgerHandle) -> Gateway {
        let providers = config
            .providers
            .iter()
            .map(|(name, p)| (name.clone(), (p.clone(), Provider::from_config(p, &http_client(p)))))
            .collect();
        Gateway { config, providers, prices, ledger }
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.get(name).map(|(_, p)| p)
    }

    pub fn route(&self, name: &str) -> Result<&Arc<RouteConfig>, GatewayError> {
        self.config.routes.get(name).ok_or_else(|| GatewayError::RouteNotFound {
            route: name.to_owned(),
            known: self.config.routes.keys().cloned().collect(),
        })
    }

    /// Serves one request: tries the route's targets until one answers.
    pub async fn handle(&self, inbound: Inbound) -> Result<Reply, GatewayError> {
        let route = self.route(&inbound.request.model)?.clone();
        let started = Instant::now();
        let mut settlement = Settlement::new(&inbound, &route, self.ledger.clone(), self.prices.clone());
        let deadline = started + route.timeouts.total;

        let failover = routing::run(route.targets.len(), &route.retry, deadline, |i| self.attempt(&inbound, &route, &route.targets[i])).await;

        for log in &failover.attempts {
            let target = &route.targets[log.target];
            settlement.attempt(target, self.provider_config(target), log);
        }
        let (index, established) = match failover.result {
            Ok(answer) => answer,
            Err(stop) => {
                let error = self.failure(&route, &failover.attempts, stop);
                let outcome = if matches!(error, GatewayError::UpstreamRejected(_)) { Outcome::ClientError } else { Outcome::UpstreamError };
                settlement.finish(outcome, error.to_api_error().status);
                return Err(error);
            }
        };
        let target = &route.targets[index];
        let attribution = Attribution {
            route: route.name.clone(),
            target: target.label(),
            attempts: failover.attempts.len() as u32,
            simulated: self.provider(&target.provider).is_some_and(|p| p.is_simulated()),
        };
        match established {
            Established::Complete(completion) => {
                settlement.answered(completion.response.usage, None);
                settlement.finish(Outcome::Success, 200);
                Ok(Reply::Complete { completion, attribution })
            }
            Established::Stream { first, rest, passthrough, ttft } => {
                settlement.stream_started(ttft);
                Ok(Reply::Stream(StreamReply {
                    first,
                    rest,
                    passthrough,
                    attribution,
                    idle_timeout: route.timeouts.stream_idle,
                    settlement,
                }))
            }
        }
    }

    /// One attempt on one target. A stream counts as established only once its first
    /// content arrives: until then, any fault can still fail over invisibly.
    async fn attempt(&self, inbound: &Inbound, route: &RouteConfig, target: &TargetConfig) -> Result<Established, UpstreamError> {
        let provider = self
            .provider(&target.provider)
            .ok_or_else(|| UpstreamError::new(ErrorKind::NotFound, format!("provider {} is not configured", target.provider)))?;
        let original = inbound.original.as_ref().filter(|_| provider.dialect() == inbound.front_door && !provider.is_simulated());
        let request = AttemptRequest { request: &inbound.request, model: &target.model, original, timeout: route.timeouts.attempt };
        let started = Instant::now();
        if !inbound.request.stream {
            return match tokio::time::timeout(route.timeouts.attempt, provider.send(request)).await {
                Ok(Ok(Answer::Complete(completion))) => Ok(Established::Complete(completion)),
                Ok(Ok(Answer::Stream(_))) => Err(UpstreamError::new(ErrorKind::Protocol, "streamed an answer that was not asked for")),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(UpstreamError::new(ErrorKind::Timeout, format!("no answer within {:?}", route.timeouts.attempt))),
            };
        }
        let first_token = async {
            match provider.send(request).await? {
                Answer::Stream(stream) => wait_for_first_content(stream.items).await.map(|(first, rest)| (first, rest, stream.passthrough)),
                Answer::Complete(_) => Err(UpstreamError::new(ErrorKind::Protocol, "answered in one piece when a stream was asked for")),
            }
        };
        match tokio::time::timeout(route.timeouts.first_token, first_token).await {
            Ok(Ok((first, rest, passthrough))) => Ok(Established::Stream { first, rest, passthrough, ttft: started.elapsed() }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(UpstreamError::new(
                ErrorKind::FirstTokenTimeout,
                format!("no first token within {:?}", route.timeouts.first_token),
            )),
        }
    }

    fn provider_config(&self, target: &TargetConfig) -> Option<&ProviderConfig> {
        self.providers.get(&target.provider).map(|(c, _)| c.as_ref())
    }

    /// Turns a failed run into the error the client sees.
    fn failure(&self, route: &RouteConfig, attempts: &[routing::AttemptLog], stop: Stop) -> GatewayError {
        if let Stop::ClientFault(error) = stop {
            return GatewayError::UpstreamRejected(error);
        }
        let summary = attempts
            .iter()
            .enumerate()
            .filter_map(|(n, log)| log.error.as_ref().map(|e| format!("#{} {}: {e}", n + 1, route.targets[log.target].label())))
            .collect::<Vec<_>>();
        let kinds = attempts.iter().filter_map(|l| l.error.as_ref().map(|e| e.kind)).collect();
        let retry_after = attempts.iter().filter_map(|l| l.error.as_ref().and_then(|e| e.retry_after)).min();
        let mut summary = summary;
        if stop == Stop::Deadline {
            summary.push(format!("the route's total deadline of {:?} passed", route.timeouts.total));
        }
        GatewayError::AllTargetsFailed { route: route.name.clone(), summary, kinds, retry_after }
    }
}

/// Each provider gets its own connection pool, so one slow upstream cannot starve
/// another of connections, and its own connect timeout.
fn http_client(provider: &ProviderConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(provider.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build()
        .unwrap_or_else(|e| {
            tracing::error!(provider = %provider.name, error = %e, "could not build a tuned HTTP client; using defaults");
            reqwest::Client::new()
        })
}

/// Reads a stream until its first content event (or its end, for an empty answer).
async fn wait_for_first_content(mut items: ItemStream) -> Result<(Vec<StreamItem>, ItemStream), UpstreamError> {
    use futures_util::StreamExt;
    let mut first = Vec::new();
    while let Some(item) = items.next().await {
        let item = item?;
        let started = item.events.iter().any(|e| e.is_content() || matches!(e, crate::canonical::StreamEvent::MessageStop));
        first.push(item);
        if started {
            return Ok((first, items));
        }
    }
    Err(UpstreamError::new(ErrorKind::StreamCut, "the stream ended before any content"))
}
