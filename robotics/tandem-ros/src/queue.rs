//! A bounded queue between the receiving and the inference threads that drops the *oldest*
//! item when full: a robot wants the newest frame, and memory must not grow with a flood.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What [`DropOldest::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// Queued with room to spare.
    Queued,
    /// Queued; the oldest item was dropped to make room and is returned.
    Displaced(T),
    /// The queue is closed: the item is returned unqueued.
    Closed(T),
}

/// What [`DropOldest::pop_timeout`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Popped<T> {
    Item(T),
    /// Nothing arrived within the timeout.
    Empty,
    /// Closed and drained: nothing will ever arrive.
    Closed,
}

struct Inner<T> {
    items: VecDeque<T>,
    closed: bool,
    dropped: u64,
}

/// A multi-producer, multi-consumer FIFO of at most `capacity` items.
pub struct DropOldest<T> {
    inner: Mutex<Inner<T>>,
    ready: Condvar,
    capacity: usize,
}

impl<T> DropOldest<T> {
    /// A queue of `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Mutex::new(Inner { items: VecDeque::with_capacity(capacity), closed: false, dropped: 0 }),
            ready: Condvar::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock leaves only a VecDeque behind: still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most items it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// `true` when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items dropped so far to make room.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Queue `item`, dropping the oldest one when full.
    pub fn push(&self, item: T) -> Pushed<T> {
        let mut inner = self.lock();
        if inner.closed {
            return Pushed::Closed(item);
        }
        let displaced = if inner.items.len() >= self.capacity {
            inner.dropped += 1;
            inner.items.pop_front()
        } else {
            None
        };
        inner.items.push_back(item);
        drop(inner);
        self.ready.notify_one();
        match displaced {
            Some(old) => Pushed::Displaced(old),
            None => Pushed::Queued,
        }
    }

    /// Take the oldest item, waiting at most `timeout` for one.
    pub fn pop_timeout(&self, timeout: Duration) -> Popped<T> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            if let Some(item) = inner.items.pop_front() {
                return Popped::Item(item);
            }
            if inner.closed {
                return Popped::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Popped::Empty;
            }
            inner = self.ready.wait_timeout(inner, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Refuse new items and wake every waiter; queued items can still be taken.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn full_queue_drops_the_oldest() {
        let q = DropOldest::new(3);
        for i in 0..3 {
            assert_eq!(q.push(i), Pushed::Queued);
        }
        assert_eq!(q.push(3), Pushed::Displaced(0));
        assert_eq!(q.push(4), Pushed::Displaced(1));
        assert_eq!((q.len(), q.dropped()), (3, 2));
        let order: Vec<i32> = std::iter::from_fn(|| match q.pop_timeout(Duration::ZERO) {
            Popped::Item(i) => Some(i),
            _ => None,
        })
        .collect();
        assert_eq!(order, [2, 3, 4]);
    }

    #[test]
    fn zero_capacity_still_holds_one() {
        let q = DropOldest::new(0);
        assert_eq!(q.capacity(), 1);
        q.push('a');
        assert_eq!(q.push('b'), Pushed::Displaced('a'));
    }

    #[test]
    fn empty_pop_times_out() {
        let q: DropOldest<u8> = DropOldest::new(2);
        let t = Instant::now();
        assert_eq!(q.pop_timeout(Duration::from_millis(30)), Popped::Empty);
        assert!(t.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn close_drains_then_reports_closed() {
        let q = DropOldest::new(2);
        q.push(1);
        q.close();
        assert_eq!(q.push(2), Pushed::Closed(2));
        assert_eq!(q.pop_timeout(Duration::ZERO), Popped::Item(1));
        assert_eq!(q.pop_timeout(Duration::from_secs(5)), Popped::Closed);
    }

    /// A producer far faster than the consumer: memory stays at the capacity, every item is
    /// either consumed or counted as dropped, and the newest item always gets through.
    #[test]
    fn a_flood_is_bounded_and_accounted_for() {
        let q = Arc::new(DropOldest::new(4));
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    q.push(i);
                    assert!(q.len() <= 4);
                }
                q.close();
            })
        };
        let mut consumed = Vec::new();
        loop {
            match q.pop_timeout(Duration::from_secs(10)) {
                Popped::Item(i) => {
                    consumed.push(i);
                    std::thread::sleep(Duration::from_micros(50));
                }
                Popped::Closed => break,
                Popped::Empty => panic!("producer stalled"),
            }
        }
        producer.join().unwrap();
        assert_eq!(consumed.len() as u64 + q.dropped(), 20_000);
        assert!(q.dropped() > 0, "the consumer was slower: something must have been dropped");
        assert!(consumed.windows(2).all(|w| w[0] < w[1]), "order is kept");
        assert_eq!(consumed.last(), Some(&19_999));
    }
}
