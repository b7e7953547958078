//! Counts over a sliding time window, kept in a fixed number of buckets.
//!
//! The breaker's error rate and the share caps both ask "how many in the last N
//! seconds". Keeping one entry per request answers exactly, but at a few thousand
//! requests a second a 30-second window holds a hundred thousand entries (megabytes,
//! and a queue whose capacity never shrinks), and reading it walks them all. Buckets of
//! a twentieth of the window bound both: memory and the cost of a reading stay the same
//! whatever the traffic. The price is the edge: a request leaves the window up to one
//! bucket (5% of it) later than it would have.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Buckets per window.
const BUCKETS: u64 = 20;

/// Counts of type `T` per bucket, for the buckets within the window.
#[derive(Debug)]
pub struct SlidingWindow<T> {
    window: Duration,
    /// Where bucket 0 starts.
    origin: Instant,
    /// A bucket's width in nanoseconds (at least 1).
    width: u128,
    /// (bucket number, counts), oldest first; only buckets something was added to.
    buckets: VecDeque<(u64, T)>,
}

impl<T: Default> SlidingWindow<T> {
    pub fn new(window: Duration, now: Instant) -> Self {
        SlidingWindow {
            window,
            origin: now,
            width: (window.as_nanos() / u128::from(BUCKETS)).max(1),
            buckets: VecDeque::with_capacity(BUCKETS as usize + 1),
        }
    }

    /// Takes a (reloaded) length; a new one starts counting afresh.
    pub fn set_window(&mut self, window: Duration, now: Instant) {
        if window != self.window {
            *self = SlidingWindow::new(window, now);
        }
    }

    /// The counts of the bucket `now` falls in, to add to. Buckets that have left the
    /// window are dropped.
    pub fn current(&mut self, now: Instant) -> &mut T {
        let bucket = self.bucket(now);
        let oldest = bucket.saturating_sub(BUCKETS - 1);
        while self.buckets.front().is_some_and(|(b, _)| *b < oldest) {
            self.buckets.pop_front();
        }
        if self.buckets.back().is_none_or(|(b, _)| *b != bucket) {
            self.buckets.push_back((bucket, T::default()));
        }
        &mut self.buckets.back_mut().expect("pushed above").1
    }

    /// The counts of every bucket within the window at `now`.
    pub fn recent(&self, now: Instant) -> impl Iterator<Item = &T> {
        let oldest = self.bucket(now).saturating_sub(BUCKETS - 1);
        self.buckets.iter().filter(move |(b, _)| *b >= oldest).map(|(_, counts)| counts)
    }

    fn bucket(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_nanos() / self.width).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(window: &SlidingWindow<u32>, now: Instant) -> u32 {
        window.recent(now).sum()
    }

    #[test]
    fn counts_stay_in_the_window_for_its_length_and_then_leave_it() {
        let start = Instant::now();
        let mut window = SlidingWindow::<u32>::new(Duration::from_secs(20), start);
        *window.current(start) += 3;
        *window.current(start + Duration::from_millis(10_500)) += 4;
        assert_eq!(total(&window, start + Duration::from_millis(10_500)), 7);
        assert_eq!(total(&window, start + Duration::from_millis(19_999)), 7);
        // The first bucket (0 s to 1 s) leaves once its end is 20 s old.
        assert_eq!(total(&window, start + Duration::from_secs(20)), 4);
        // The second (10 s to 11 s) once its end is 20 s old.
        assert_eq!(total(&window, start + Duration::from_millis(29_999)), 4);
        assert_eq!(total(&window, start + Duration::from_secs(30)), 0);
    }

    #[test]
    fn memory_does_not_grow_with_the_number_of_counts_or_the_time_passed() {
        let start = Instant::now();
        let mut window = SlidingWindow::<u32>::new(Duration::from_secs(30), start);
        for i in 0..100_000u64 {
            *window.current(start + Duration::from_millis(i * 7)) += 1;
        }
        assert!(window.buckets.len() <= BUCKETS as usize, "{} buckets", window.buckets.len());
        let end = start + Duration::from_millis(99_999 * 7);
        // About 30 s of the 700 s run, one count every 7 ms.
        let kept = total(&window, end);
        assert!((4_050..=4_300).contains(&kept), "{kept} counts in the window");
    }

    #[test]
    fn a_reload_with_the_same_length_keeps_the_counts_and_a_new_length_starts_afresh() {
        let start = Instant::now();
        let mut window = SlidingWindow::<u32>::new(Duration::from_secs(30), start);
        *window.current(start) += 2;
        window.set_window(Duration::from_secs(30), start);
        assert_eq!(total(&window, start), 2);
        window.set_window(Duration::from_secs(60), start);
        assert_eq!(total(&window, start), 0);
    }

    #[test]
    fn a_zero_length_window_still_counts_the_current_instant() {
        let start = Instant::now();
        let mut window = SlidingWindow::<u32>::new(Duration::ZERO, start);
        *window.current(start) += 1;
        assert_eq!(total(&window, start), 1);
        assert_eq!(total(&window, start + Duration::from_nanos(20)), 0);
    }
}
