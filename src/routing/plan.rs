//! Planning: the order in which a request will try a route's targets.
//!
//! The route's strategy proposes an order; health then decides: targets with an open
//! circuit, in rate-limit cooldown or out of quota are skipped (with the reason and
//! when that may change), and targets nearly out of quota or over the route's topology
//! share cap are moved behind the others. A cap never makes the route fail: when every
//! other target fails, the capped one still answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::health::{Availability, TargetHealth};
use super::window::SlidingWindow;
use crate::config::{ProviderConfig, RouteConfig, Strategy, Topology, TopologyDimension};
use crate::ledger::PriceCatalog;

/// Fewer answered requests than this in the window and share caps are not enforced:
/// a cap over three requests would just be noise.
const MIN_SHARE_SAMPLES: usize = 10;

/// What planning needs to know about one route.
pub struct PlanContext<'a> {
    pub route: &'a RouteConfig,
    /// The provider of each of the route's targets, in target order.
    pub providers: &'a [Option<Arc<ProviderConfig>>],
    /// The health of each of the route's targets, in target order.
    pub health: &'a [Arc<TargetHealth>],
    pub prices: &'a PriceCatalog,
    pub shares: &'a ShareTracker,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Target indices to try, in order.
    pub order: Vec<usize>,
    pub skipped: Vec<Skipped>,
}

/// A target left out of the plan, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub target: usize,
    pub reason: &'static str,
    pub until: Instant,
}

pub fn plan(ctx: &PlanContext<'_>) -> Plan {
    let proposed = propose(ctx);
    let mut preferred = Vec::new();
    let mut demoted = Vec::new();
    let mut skipped = Vec::new();
    for index in proposed {
        let provider = ctx.providers.get(index).and_then(Option::as_deref);
        match ctx.health[index].availability() {
            Availability::Unavailable { reason, until } => skipped.push(Skipped { target: index, reason, until }),
            Availability::Ready { low_quota } => {
                let over_cap = provider.is_some_and(|p| over_share_cap(ctx, &p.topology));
                if low_quota || over_cap {
                    demoted.push(index);
                } else {
                    preferred.push(index);
                }
            }
        }
    }
    preferred.extend(demoted);
    Plan { order: preferred, skipped }
}

/// The strategy's order, before health is considered.
fn propose(ctx: &PlanContext<'_>) -> Vec<usize> {
    let targets = &ctx.route.targets;
    let mut order: Vec<usize> = (0..targets.len()).collect();
    match ctx.route.strategy {
        Strategy::Priority => {}
        Strategy::Weighted => {
            // Weighted sampling without replacement: each pick is random by weight
            // among the targets not yet picked.
            let mut rng = rand::rng();
            let mut remaining = order;
            order = Vec::with_capacity(remaining.len());
            while !remaining.is_empty() {
                let total: u64 = remaining.iter().map(|&i| u64::from(targets[i].weight.max(1))).sum();
                let mut roll = rng.random_range(0..total);
                let pick = remaining
                    .iter()
                    .position(|&i| {
                        let w = u64::from(targets[i].weight.max(1));
                        if roll < w {
                            true
                        } else {
                            roll -= w;
                            false
                        }
                    })
                    .unwrap_or(0);
                order.push(remaining.remove(pick));
            }
        }
        Strategy::LeastLatency => {
            // Power of two choices: of two random targets the faster goes first, so
            // load spreads instead of stampeding the single fastest one; the rest
            // follow fastest first. Targets never measured count as fastest, so
            // each gets measured.
            let latency = |i: usize| ctx.health[i].latency_ms().unwrap_or(0.0);
            order.sort_by(|&a, &b| latency(a).total_cmp(&latency(b)));
            if order.len() >= 2 {
                let mut rng = rand::rng();
                let a = rng.random_range(0..order.len());
                let mut b = rng.random_range(0..order.len() - 1);
                if b >= a {
                    b += 1;
                }
                let first = if latency(order[a]) <= latency(order[b]) { a } else { b };
                let chosen = order.remove(first);
                order.insert(0, chosen);
            }
        }
        Strategy::Cheapest => {
            let now = chrono::Utc::now();
            let price = |i: usize| {
                let target = &targets[i];
                let catalog = ctx.providers.get(i).and_then(Option::as_deref).map_or("", |p| p.catalog.as_str());
                let model = target.priced_as.as_deref().unwrap_or(&target.model);
                // Unpriced targets go last: "cheapest" must not mean "unknown".
                ctx.prices.price_at(catalog, model, now).map(|p| p.input.saturating_add(p.output)).unwrap_or(u64::MAX)
            };
            order.sort_by_key(|&i| price(i));
        }
    }
    order
}

fn over_share_cap(ctx: &PlanContext<'_>, topology: &Topology) -> bool {
    ctx.route.max_share.iter().any(|(dimension, cap)| {
        topology.get(*dimension).is_some_and(|value| ctx.shares.would_exceed(&ctx.route.name, *dimension, value, *cap))
    })
}

/// Recent answered requests per route, counted by the topology of the target that
/// answered, in a [`SlidingWindow`] per route: what a share cap reads costs the same at
/// ten requests a second or ten thousand.
#[derive(Debug, Default)]
pub struct ShareTracker {
    routes: Mutex<HashMap<String, SlidingWindow<ShareCounts>>>,
}

/// Answers in one bucket of the window: all of them, and by topology value.
#[derive(Debug, Default)]
struct ShareCounts {
    total: u32,
    by_value: Vec<(TopologyDimension, String, u32)>,
}

impl ShareCounts {
    fn add(&mut self, topology: &Topology) {
        self.total += 1;
        for dimension in TopologyDimension::ALL {
            let Some(value) = topology.get(dimension) else { continue };
            match self.by_value.iter_mut().find(|(d, v, _)| *d == dimension && v == value) {
                Some((_, _, count)) => *count += 1,
                None => self.by_value.push((dimension, value.to_owned(), 1)),
            }
        }
    }

    fn count(&self, dimension: TopologyDimension, value: &str) -> u32 {
        self.by_value.iter().find(|(d, v, _)| *d == dimension && v == value).map_or(0, |(_, _, count)| *count)
    }
}

impl ShareTracker {
    /// Records that `route` was answered by a target with this topology.
    pub fn record(&self, route: &str, topology: &Topology, window: Duration) {
        let now = Instant::now();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let recent = match routes.get_mut(route) {
            Some(recent) => recent,
            None => routes.entry(route.to_owned()).or_insert_with(|| SlidingWindow::new(window, now)),
        };
        // A reload may have changed the route's window.
        recent.set_window(window, now);
        recent.current(now).add(topology);
    }

    /// Whether one more request answered by `value` would push its share above `cap`.
    pub fn would_exceed(&self, route: &str, dimension: TopologyDimension, value: &str, cap: f64) -> bool {
        let now = Instant::now();
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(recent) = routes.get(route) else { return false };
        let (mut total, mut matching) = (0usize, 0usize);
        for counts in recent.recent(now) {
            total += counts.total as usize;
            matching += counts.count(dimension, value) as usize;
        }
        total >= MIN_SHARE_SAMPLES && (matching + 1) as f64 / (total + 1) as f64 > cap
    }

    /// Shares of each value of `dimension` on `route` in the window, for reports.
    pub fn shares(&self, route: &str, dimension: TopologyDimension) -> Vec<(String, f64)> {
        let now = Instant::now();
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(recent) = routes.get(route) else { return Vec::new() };
        let mut counts: HashMap<&str, u32> = HashMap::new();
        let mut total = 0;
        for bucket in recent.recent(now) {
            total += bucket.total;
            // Answers from targets without this dimension are counted under "(unknown)".
            let mut known = 0;
            for (_, value, count) in bucket.by_value.iter().filter(|(d, _, _)| *d == dimension) {
                *counts.entry(value).or_default() += count;
                known += count;
            }
            if known < bucket.total {
                *counts.entry("(unknown)").or_default() += bucket.total - known;
            }
        }
        let mut shares: Vec<_> = counts.into_iter().map(|(v, n)| (v.to_owned(), f64::from(n) / f64::from(total))).collect();
        shares.sort_by(|a, b| a.0.cmp(&b.0));
        shares
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(cloud: &str) -> Topology {
        Topology { cloud: Some(cloud.to_owned()), ..Topology::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn shares_count_the_answers_of_the_window_by_value_and_forget_older_ones() {
        let tracker = ShareTracker::default();
        let window = Duration::from_secs(60);
        for _ in 0..3 {
            tracker.record("r", &topology("aws"), window);
        }
        tracker.record("r", &Topology::default(), window);
        tokio::time::advance(Duration::from_secs(30)).await;
        for _ in 0..8 {
            tracker.record("r", &topology("gcp"), window);
        }
        let shares = tracker.shares("r", TopologyDimension::Cloud);
        assert_eq!(shares, [("(unknown)".to_owned(), 1.0 / 12.0), ("aws".to_owned(), 3.0 / 12.0), ("gcp".to_owned(), 8.0 / 12.0)]);
        // 8 of 12 answered by gcp: one more is 9 of 13, above a 0.6 cap and below 0.7.
        assert!(tracker.would_exceed("r", TopologyDimension::Cloud, "gcp", 0.6));
        assert!(!tracker.would_exceed("r", TopologyDimension::Cloud, "gcp", 0.7));
        // The first four answers leave the window; the eight gcp ones are below the
        // ten answers a cap needs.
        tokio::time::advance(Duration::from_secs(33)).await;
        assert_eq!(tracker.shares("r", TopologyDimension::Cloud), [("gcp".to_owned(), 1.0)]);
        assert!(!tracker.would_exceed("r", TopologyDimension::Cloud, "gcp", 0.6));
    }
}
