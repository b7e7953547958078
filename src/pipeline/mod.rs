//! The life of a request, top to bottom:
//! find the route → take a route slot → plan the targets (strategy, health, share
//! caps) → try them with failover (and hedging) → answer or stream → settle in the
//! ledger.
//!
//! Everything here is plain async code over canonical types; HTTP lives in `app`, wire
//! formats in `dialects` and `providers`, decisions about order and retries in
//! `routing`. Authentication happens in the front door (the key id arrives in
//! [`Inbound`]); budgets and rate limits will slot in before planning.

mod settle;
pub mod tokens;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use settle::Settlement;
pub use stream::client_stream;

use crate::canonical::{ChatRequest, Dialect};
use crate::config::{Config, ProviderConfig, RouteConfig, StreamRecovery, TargetConfig};
use crate::error::GatewayError;
use crate::ledger::{AttemptOutcome, LedgerHandle, Outcome, PriceCatalog};
use crate::telemetry::RouteMetrics;
use crate::providers::{Answer, AttemptRequest, Completion, ErrorKind, HttpClient, ItemStream, Provider, StreamItem, UpstreamError};
use crate::routing::{self, AttemptGuard, AttemptReport, Availability, Health, PlanContext, ShareTracker, Stop, TargetHealth};

/// State that outlives a configuration: what the gateway has learned about targets.
/// A config reload builds a new [`Gateway`] around the same `Shared`.
#[derive(Default)]
pub struct Shared {
    pub health: Arc<Health>,
    pub shares: ShareTracker,
    /// Cancelled when a graceful shutdown's drain time is up: streams still running
    /// then end with an error event and settle, before the ledger closes.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Everything the pipeline needs, built once per configuration.
pub struct Gateway {
    pub config: Arc<Config>,
    providers: BTreeMap<String, (Arc<ProviderConfig>, Arc<Provider>)>,
    prices: Arc<PriceCatalog>,
    ledger: LedgerHandle,
    shared: Arc<Shared>,
    route_slots: BTreeMap<String, Arc<Semaphore>>,
    /// Per target label, for providers with `max_concurrency`.
    target_slots: BTreeMap<String, Arc<Semaphore>>,
    /// Per route: what its requests share.
    route_states: BTreeMap<String, Arc<RouteState>>,
}

/// What a route's requests share, made once per configuration.
pub(super) struct RouteState {
    config: Arc<RouteConfig>,
    metrics: RouteMetrics,
    /// Per route target: its health, which outlives the configuration.
    health: Vec<Arc<TargetHealth>>,
    /// The route's name as its requests' ledger records hold it.
    name: Arc<str>,
    /// Per route target: what its requests record and say about it.
    targets: Vec<TargetFacts>,
    /// Per route target: its provider's configuration, if there is one.
    providers: Vec<Option<Arc<ProviderConfig>>>,
}

impl RouteState {
    /// The configuration of route target `index`'s provider, if it is configured.
    pub(super) fn provider(&self, index: usize) -> Option<&ProviderConfig> {
        self.providers.get(index)?.as_deref()
    }
}

/// What a route's requests record and say about one of its targets, made once per
/// configuration. The names are shared by every request's ledger record instead of
/// copied into each.
pub(super) struct TargetFacts {
    pub(super) label: Arc<str>,
    pub(super) provider: Arc<str>,
    /// The provider's kind; empty when the provider is not configured.
    pub(super) kind: Arc<str>,
    pub(super) model: Arc<str>,
    /// What a reply the target answers says about it (its attempt count left at 0).
    attribution: Attribution,
}

/// A decoded request as it leaves the front door.
pub struct Inbound {
    pub request: ChatRequest,
    /// The client's JSON, for passthrough to an upstream of the same dialect.
    pub original: Option<bytes::Bytes>,
    pub front_door: Dialect,
    pub key_id: Arc<str>,
    /// The client's `anthropic-beta` header, for Anthropic-dialect upstreams.
    pub anthropic_beta: Option<String>,
    /// The client's `anthropic-version` header: a passthrough body follows that
    /// version's rules, so the upstream must be told the same version.
    pub anthropic_version: Option<String>,
}

/// Which target answered, for the reply's headers. The route's and each target's
/// are made once per configuration ([`RouteState`]); a request copies them and adds
/// its attempt count.
#[derive(Debug, Clone)]
pub struct Attribution {
    /// The route's name as a header value; `None` when it cannot be one (a name
    /// with control characters), and the header is left out.
    pub route: Option<HeaderValue>,
    /// The answering target's label ("provider/model"), likewise.
    pub target: Option<HeaderValue>,
    pub attempts: u32,
    pub simulated: bool,
    /// The front door's headers for a complete reply from this target after one attempt,
    /// made on the first such reply and shared by the target's later ones.
    pub reply_headers: Arc<std::sync::OnceLock<HeaderMap>>,
}

/// A successful request's answer.
pub enum Reply {
    /// `request_id` names the request's ledger entry. The completion stays in the box
    /// its provider made (see [`Answer`](crate::providers::Answer)).
    Complete { completion: Box<Completion>, attribution: Attribution, request_id: Arc<str> },
    /// Boxed: a stream's state is three times a complete answer's, and every reply is
    /// moved out of the pipeline's future.
    Stream(Box<StreamReply>),
}

/// A request that got no answer: the error for the client and, when the request was
/// routed, the id of its ledger entry (which lists the failed attempts).
#[derive(Debug)]
pub struct Unanswered {
    pub error: GatewayError,
    pub request_id: Option<Arc<str>>,
}

impl From<GatewayError> for Unanswered {
    /// Refused before it was routed: nothing of it is in the ledger.
    fn from(error: GatewayError) -> Self {
        Unanswered { error, request_id: None }
    }
}

impl Unanswered {
    /// The error of a routed request, whose settlement has written its ledger entry.
    fn recorded(error: GatewayError, settlement: &Settlement) -> Self {
        Unanswered { error, request_id: Some(settlement.request_id().clone()) }
    }
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
    /// Set when the route continues broken streams on another target.
    pub recovery: Option<Recovery>,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// What a stream needs to have a broken answer continued by another target.
pub struct Recovery {
    gateway: Arc<Gateway>,
    state: Arc<RouteState>,
    request: ChatRequest,
    key_id: Arc<str>,
    /// Targets that already served this request.
    tried: Vec<usize>,
}

impl Recovery {
    /// Asks the route's other healthy targets, in plan order, to continue `partial`:
    /// as assistant prefill where the target takes it, otherwise with an instruction.
    /// Records the attempts in `settlement`; the answering one becomes the billed
    /// continuation.
    pub(super) async fn resume(&mut self, partial: &str, settlement: &mut Settlement) -> Result<(Vec<StreamItem>, ItemStream), UpstreamError> {
        let gateway = self.gateway.clone();
        let state = self.state.clone();
        let route = &state.config;
        let plan = routing::plan(&PlanContext {
            route,
            providers: &state.providers,
            health: &state.health,
            prices: &gateway.prices,
            shares: &gateway.shared.shares,
        });
        let remaining: Vec<usize> = plan.order.into_iter().filter(|i| !self.tried.contains(i)).collect();
        if remaining.is_empty() {
            return Err(UpstreamError::new(ErrorKind::Unavailable, "no other target is available to continue the answer"));
        }
        let with_prefill = self.inbound(partial, true);
        let with_instruction = self.inbound(partial, false);
        let options = routing::Options { retry: &route.retry, deadline: Instant::now() + route.timeouts.total, hedge_after: None };
        let attempt = |i: usize| {
            let target = &route.targets[i];
            let prefill = gateway.provider(&target.provider).is_some_and(|p| p.supports_prefill(&target.model));
            Box::pin(gateway.attempt(if prefill { &with_prefill } else { &with_instruction }, &state, i))
        };
        let result = routing::run(remaining, &options, |_| Vec::new(), attempt, &mut settlement.pending).await;
        settlement.absorb();
        match result {
            Ok((index, Established::Stream { first, rest, status, ttft, permit, health, .. })) => {
                self.tried.push(index);
                settlement.stream_started(status, ttft, health);
                settlement.hold(permit);
                Ok((first, rest))
            }
            Ok((_, Established::Complete(_))) => Err(UpstreamError::new(ErrorKind::Protocol, "the continuation was not streamed")),
            Err(_) => Err(UpstreamError::new(ErrorKind::Unavailable, "no other target could continue the answer")),
        }
    }

    fn inbound(&self, partial: &str, prefill: bool) -> Inbound {
        let mut request = self.request.clone();
        request.messages.push(crate::canonical::Message::text(crate::canonical::Role::Assistant, partial));
        if !prefill {
            request.messages.push(crate::canonical::Message::text(
                crate::canonical::Role::User,
                "Your previous answer was cut off. Continue it exactly where it stopped, without repeating anything and without any preamble.",
            ));
        }
        Inbound { request, original: None, front_door: Dialect::OpenAiChat, key_id: self.key_id.clone(), anthropic_beta: None, anthropic_version: None }
    }
}

/// What a successful attempt hands back to the failover loop.
enum Established {
    Complete(Box<Completion>),
    Stream {
        first: Vec<StreamItem>,
        rest: ItemStream,
        passthrough: bool,
        /// The upstream's HTTP status.
        status: u16,
        ttft: Duration,
        permit: Option<OwnedSemaphorePermit>,
        /// Reports the stream's outcome to its target's health when it ends.
        health: AttemptGuard,
    },
}

impl Gateway {
    pub fn new(config: Arc<Config>, prices: Arc<PriceCatalog>, ledger: LedgerHandle, shared: Arc<Shared>) -> Gateway {
        // Each provider gets its own connection pool, so one slow upstream cannot starve
        // another of connections, and its own connect timeout, trusted CAs and answer limit.
        let providers: BTreeMap<String, (Arc<ProviderConfig>, Arc<Provider>)> = config
            .providers
            .iter()
            .map(|(name, p)| {
                let client = HttpClient::new(p.connect_timeout).trusting(&p.ca_certificates).limiting_answers_to(p.max_answer_bytes);
                (name.clone(), (p.clone(), Provider::from_config(p, &client)))
            })
            .collect();
        let route_slots = config
            .routes
            .values()
            .filter_map(|r| r.max_concurrency.map(|n| (r.name.clone(), Arc::new(Semaphore::new(n as usize)))))
            .collect();
        let target_slots = config
            .routes
            .values()
            .flat_map(|r| r.targets.iter())
            .filter_map(|t| {
                let limit = config.providers.get(&t.provider)?.max_concurrency?;
                Some((t.label().to_owned(), Arc::new(Semaphore::new(limit as usize))))
            })
            .collect();
        let route_states = config
            .routes
            .values()
            .map(|r| {
                let outcomes = Outcome::ALL.map(Outcome::as_str);
                let attempt_outcomes = AttemptOutcome::ALL.map(AttemptOutcome::as_str);
                let metrics = RouteMetrics::new(&r.name, r.targets.iter().map(TargetConfig::label), &outcomes, &attempt_outcomes);
                let health = r
                    .targets
                    .iter()
                    .map(|t| {
                        let policy = config.providers.get(&t.provider).map(|p| p.breaker).unwrap_or_default();
                        shared.health.target(t.label(), &policy)
                    })
                    .collect();
                let route_header = HeaderValue::from_str(&r.name).ok();
                let targets = r
                    .targets
                    .iter()
                    .map(|t| {
                        let provider = config.providers.get(&t.provider);
                        TargetFacts {
                            label: t.label().into(),
                            provider: t.provider.as_str().into(),
                            kind: provider.map_or("", |p| p.kind()).into(),
                            model: t.model.as_str().into(),
                            attribution: Attribution {
                                route: route_header.clone(),
                                target: HeaderValue::from_str(t.label()).ok(),
                                attempts: 0,
                                simulated: providers.get(&t.provider).is_some_and(|(_, p)| p.is_simulated()),
                                reply_headers: Arc::default(),
                            },
                        }
                    })
                    .collect();
                let route_providers = r.targets.iter().map(|t| providers.get(&t.provider).map(|(c, _)| c.clone())).collect();
                let state = RouteState { config: r.clone(), metrics, health, name: r.name.as_str().into(), targets, providers: route_providers };
                (r.name.clone(), Arc::new(state))
            })
            .collect();
        Gateway { config, providers, prices, ledger, shared, route_slots, target_slots, route_states }
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.get(name).map(|(_, p)| p)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn route(&self, name: &str) -> Result<&Arc<RouteConfig>, GatewayError> {
        self.route_state(name).map(|state| &state.config)
    }

    fn route_state(&self, name: &str) -> Result<&Arc<RouteState>, GatewayError> {
        self.route_states.get(name).ok_or_else(|| GatewayError::RouteNotFound {
            route: name.to_owned(),
            known: self.config.routes.keys().cloned().collect(),
        })
    }

    /// Serves one request: tries the route's targets until one answers.
    pub async fn handle(self: &Arc<Self>, inbound: Inbound) -> Result<Reply, Unanswered> {
        let state = self.route_state(&inbound.request.model)?.clone();
        let route = state.config.clone();
        let route_permit = self.route_slot(&route).await?;
        let started = Instant::now();
        let mut settlement = Settlement::new(&inbound, started, state.clone(), self.ledger.clone(), self.prices.clone());
        settlement.hold(route_permit);

        let plan = routing::plan(&PlanContext {
            route: &route,
            providers: &state.providers,
            health: &state.health,
            prices: &self.prices,
            shares: &self.shared.shares,
        });
        if plan.order.is_empty() {
            let error = unavailable(&route, &plan.skipped);
            settlement.finish(Outcome::UpstreamError, error.to_api_error().status);
            return Err(Unanswered::recorded(error, &settlement));
        }

        let options = routing::Options { retry: &route.retry, deadline: started + route.timeouts.total, hedge_after: route.hedge_after };
        // Each attempt is boxed: the failover loop keeps up to three attempt futures
        // (a retry, a hedge and its rival) of about 3.6 KiB each, and unboxed they made
        // every enclosing future, up to the HTTP handler's, over 50 KiB, copied whole at
        // each level on every request.
        let attempt = |i| Box::pin(self.attempt(&inbound, &state, i));
        let result = routing::run(plan.order, &options, |t| larger_context(&route, t), attempt, &mut settlement.pending).await;
        let attempts = settlement.pending.len() as u32;
        let (index, established) = match result {
            Ok(answer) => {
                settlement.absorb();
                answer
            }
            Err(stop) => {
                let error = failure(&route, &settlement.pending, stop);
                let outcome = if matches!(error, GatewayError::UpstreamRejected(_)) { Outcome::ClientError } else { Outcome::UpstreamError };
                settlement.finish(outcome, error.to_api_error().status);
                return Err(Unanswered::recorded(error, &settlement));
            }
        };
        if !route.max_share.is_empty() {
            if let Some(provider) = state.provider(index) {
                self.shared.shares.record(&route.name, &provider.topology, route.share_window);
            }
        }
        let attribution = Attribution { attempts, ..state.targets[index].attribution.clone() };
        match established {
            Established::Complete(completion) => {
                settlement.answered(completion.status, completion.response.usage, None);
                settlement.answered_by(&completion.response.model);
                settlement.finish(Outcome::Success, 200);
                Ok(Reply::Complete { completion, attribution, request_id: settlement.request_id().clone() })
            }
            Established::Stream { first, rest, passthrough, status, ttft, permit, health } => {
                settlement.stream_started(status, ttft, health);
                settlement.hold(permit);
                let recovery = (route.stream_recovery == StreamRecovery::Continue).then(|| Recovery {
                    gateway: self.clone(),
                    state: state.clone(),
                    request: inbound.request.clone(),
                    key_id: inbound.key_id.clone(),
                    tried: vec![index],
                });
                let idle_timeout = route.timeouts.stream_idle;
                let shutdown = self.shared.shutdown.clone();
                Ok(Reply::Stream(Box::new(StreamReply { first, rest, passthrough, attribution, idle_timeout, settlement, recovery, shutdown })))
            }
        }
    }

    /// Waits (up to the route's queue timeout) for a free slot on a limited route.
    async fn route_slot(&self, route: &RouteConfig) -> Result<Option<OwnedSemaphorePermit>, GatewayError> {
        let Some(slots) = self.route_slots.get(&route.name) else { return Ok(None) };
        match tokio::time::timeout(route.queue_timeout, slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(GatewayError::RouteSaturated { route: route.name.clone(), limit: route.max_concurrency.unwrap_or(0) }),
        }
    }

    /// One attempt on one target. A stream counts as established only once its first
    /// content arrives: until then, any fault can still fail over invisibly.
    async fn attempt(&self, inbound: &Inbound, state: &RouteState, index: usize) -> Result<Established, UpstreamError> {
        let (route, health) = (&state.config, &state.health[index]);
        let target = &route.targets[index];
        let label = target.label();
        let (_, provider) = self
            .providers
            .get(&target.provider)
            .ok_or_else(|| UpstreamError::new(ErrorKind::NotFound, format!("provider {} is not configured", target.provider)))?;
        let guard = health.begin().map_err(|availability| match availability {
            Availability::Unavailable { reason, .. } => UpstreamError::new(ErrorKind::Unavailable, format!("{label} is unavailable: {reason}")),
            Availability::Ready { .. } => UpstreamError::new(ErrorKind::Unavailable, format!("{label} is unavailable")),
        })?;
        let permit = match self.target_slots.get(label) {
            None => None,
            Some(slots) => match tokio::time::timeout(route.queue_timeout, slots.clone().acquire_owned()).await {
                Ok(Ok(permit)) => Some(permit),
                _ => return Err(UpstreamError::new(ErrorKind::Saturated, format!("{label} has no free slot within {:?}", route.queue_timeout))),
            },
        };
        // A route that continues broken streams encodes them itself so it can splice in
        // a continuation; it never forwards upstream bytes verbatim.
        let original = inbound.original.as_deref().filter(|_| {
            provider.dialect(&target.model) == Some(inbound.front_door)
                && !(inbound.request.stream && route.stream_recovery == StreamRecovery::Continue)
        });
        let request = AttemptRequest {
            request: &inbound.request,
            model: &target.model,
            original,
            anthropic_beta: inbound.anthropic_beta.as_deref(),
            anthropic_version: inbound.anthropic_version.as_deref(),
        };
        let started = Instant::now();
        if inbound.request.stream {
            match stream_attempt(provider, request, started, route.timeouts.first_token).await {
                Ok(Opened { first, rest, passthrough, status, rate_limit }) => {
                    let ttft = started.elapsed();
                    guard.established(ttft, rate_limit);
                    Ok(Established::Stream { first, rest, passthrough, status, ttft, permit, health: guard })
                }
                Err(error) => Err(failed(guard, error)),
            }
        } else {
            match complete_attempt(provider, request, started, route.timeouts.attempt).await {
                Ok(completion) => {
                    let rate_limit = completion.rate_limit.clone();
                    guard.report(AttemptReport::Success { latency: started.elapsed(), ttft: None, rate_limit });
                    Ok(Established::Complete(completion))
                }
                Err(error) => Err(failed(guard, error)),
            }
        }
    }
}

/// Reports a failed attempt to its target's health and hands the error on.
fn failed(guard: AttemptGuard, error: UpstreamError) -> UpstreamError {
    guard.report(AttemptReport::Failure(error.clone()));
    error
}

/// Sends a request and waits for its complete answer, up to `timeout` after the attempt
/// `started` (the caller's clock reading, not another one).
async fn complete_attempt(provider: &Provider, request: AttemptRequest<'_>, started: Instant, timeout: Duration) -> Result<Box<Completion>, UpstreamError> {
    match tokio::time::timeout_at(started + timeout, provider.send(request)).await {
        Ok(Ok(Answer::Complete(completion))) => Ok(completion),
        Ok(Ok(Answer::Stream(_))) => Err(UpstreamError::new(ErrorKind::Protocol, "streamed an answer that was not asked for")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(UpstreamError::new(ErrorKind::Timeout, format!("no answer within {timeout:?}"))),
    }
}

/// A streamed answer whose first content has arrived.
struct Opened {
    first: Vec<StreamItem>,
    rest: ItemStream,
    passthrough: bool,
    status: u16,
    rate_limit: Option<crate::providers::RateLimitHint>,
}

/// Sends a streamed request and waits for its first content, all within `first_token`
/// of the attempt's start.
async fn stream_attempt(provider: &Provider, request: AttemptRequest<'_>, started: Instant, first_token: Duration) -> Result<Opened, UpstreamError> {
    let opening = async {
        match provider.send(request).await? {
            Answer::Stream(stream) => {
                let (first, rest) = wait_for_first_content(stream.items).await?;
                Ok(Opened { first, rest, passthrough: stream.passthrough, status: stream.status, rate_limit: stream.rate_limit })
            }
            Answer::Complete(_) => Err(UpstreamError::new(ErrorKind::Protocol, "answered in one piece when a stream was asked for")),
        }
    };
    match tokio::time::timeout_at(started + first_token, opening).await {
        Ok(result) => result,
        Err(_) => Err(UpstreamError::new(ErrorKind::FirstTokenTimeout, format!("no first token within {first_token:?}"))),
    }
}

/// The route's targets with a larger context window than `index`'s (all that declare
/// one, when `index` declares none), largest last so the closest fit is tried first.
fn larger_context(route: &RouteConfig, index: usize) -> Vec<usize> {
    let current = route.targets[index].context_window.unwrap_or(0);
    let mut larger: Vec<usize> = (0..route.targets.len())
        .filter(|&i| route.targets[i].context_window.is_some_and(|w| w > current))
        .collect();
    larger.sort_by_key(|&i| route.targets[i].context_window);
    larger
}

/// The error for a route none of whose targets could take an attempt.
fn unavailable(route: &RouteConfig, skipped: &[routing::Skipped]) -> GatewayError {
    let now = Instant::now();
    let reasons = skipped.iter().map(|s| format!("{}: {}", route.targets[s.target].label(), s.reason)).collect();
    let retry_after = skipped.iter().map(|s| s.until.saturating_duration_since(now)).min();
    GatewayError::NoTargetAvailable { route: route.name.clone(), reasons, retry_after }
}

/// Turns a failed run into the error the client sees.
fn failure(route: &RouteConfig, attempts: &[routing::AttemptLog], stop: Stop) -> GatewayError {
    if let Stop::ClientFault(error) = stop {
        return GatewayError::UpstreamRejected(error);
    }
    // Every target lacked a feature the request needs: that is the request's problem
    // (a 400 naming the feature), not an upstream outage.
    let mut errors = attempts.iter().filter_map(|l| l.error()).peekable();
    if errors.peek().is_some() && errors.clone().all(|e| e.kind == ErrorKind::Unsupported) {
        if let Some(first) = errors.next() {
            return GatewayError::UpstreamRejected(first.clone());
        }
    }
    let mut summary: Vec<String> = attempts
        .iter()
        .enumerate()
        .filter_map(|(n, log)| log.error().map(|e| format!("#{} {}: {e}", n + 1, route.targets[log.target].label())))
        .collect();
    let kinds = attempts.iter().filter_map(|l| l.error().map(|e| e.kind)).collect();
    let retry_after = attempts.iter().filter_map(|l| l.error().and_then(|e| e.retry_after)).min();
    if stop == Stop::Deadline {
        summary.push(format!("the route's total deadline of {:?} passed", route.timeouts.total));
    }
    GatewayError::AllTargetsFailed { route: route.name.clone(), summary, kinds, retry_after }
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
