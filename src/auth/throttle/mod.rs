//! Login throttling in Authelia's spirit: `max_failures` failed sign-ins (passwords or
//! 2FA codes) within `window` block that user name for `block`, and separately block
//! that client address. One attacker spraying thousands of names from one address is
//! stopped by the address rule without touching anyone's account; no rule is global.
//!
//! Memory is bounded whatever is sent: each table holds at most `capacity` keys. When
//! full, stale keys (nothing in the window, not blocked) go first, then the least
//! recently seen of those neither blocked nor being checked. A live block is never
//! dropped to make room (that would let a flood of cheap failures from many addresses
//! lift it). When a table holds nothing else: a name the manifest knows still gets
//! its entry (the table grows by at most the number of users), an unknown name is
//! refused (429) until the first block ends, and a new address is not counted, so a
//! flood of blocks from thousands of addresses cannot lock every real user out.
//! governor's GCRA limits fit steady request rates, not "N failures then
//! a fixed ban", and it has no hard cap on keys, so this is written out here.
//!
//! There is one way to count, for passwords, 2FA codes and API tokens alike: an attempt
//! is counted while it is checked (`begin`), not only once it failed. A password check
//! takes tens of milliseconds, so parallel guesses cannot slip past the limit while the
//! first ones are still hashing, and a guess whose client hangs up before the answer
//! counts as a failure. Tokens (`begin_address`) count against the address only.
//!
//! Failures and blocks are written to the state database as they happen and read back
//! at start-up, so restarting ftw does not lift a block or forget recent failures.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::manifest::Throttle as Policy;
use crate::store::{Pending, Store};

mod shared;
mod stored;

pub const DEFAULT_CAPACITY: usize = 10_000;

pub struct Throttle {
    users: Mutex<Table>,
    addresses: Mutex<Table>,
    capacity: usize,
    store: Option<Arc<dyn Store>>,
    /// When the "full of blocks" warning was last logged.
    warned: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

const USERS: &str = "users";
const ADDRESSES: &str = "addresses";

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// Keys dropped to make room, not yet forgotten in the database.
    evicted: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    last_seen: Instant,
    /// Attempts being checked now (see `Throttle::begin`).
    in_flight: u32,
}

/// How long a sign-in is told to wait when enough attempts for this name or address
/// are already being checked to reach the limit.
const BUSY_WAIT: Duration = Duration::from_secs(1);

impl Entry {
    fn stale(&self, now: Instant, window: Duration) -> bool {
        self.in_flight == 0
            && self.blocked_until.is_none_or(|b| b <= now)
            && self
                .failures
                .back()
                .is_none_or(|last| now.duration_since(*last) > window)
    }
}

/// The throttle key of an address: IPv4 whole, IPv6 by its /64 (one host usually has
/// a whole /64 to pick addresses from).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A user name as a throttle key: what was typed, at most 64 characters (longer names
/// are not user names, and keys must stay small).
fn user_key(user: &str) -> String {
    user.chars().take(64).collect()
}

impl Throttle {
    /// A throttle kept in memory only (unit tests).
    pub fn new(capacity: usize) -> Throttle {
        Throttle {
            users: Mutex::new(Table::default()),
            addresses: Mutex::new(Table::default()),
            capacity: capacity.max(1),
            store: None,
            warned: Mutex::new(None),
        }
    }

    /// Starts checking a sign-in for this user name from this address: `Err(wait)`
    /// when either is blocked, or when the attempts already being checked could reach
    /// the limit. Say how it ended with `Attempt::failed` or `Attempt::succeeded`; an
    /// attempt dropped without either (the client went away) counts as a failure.
    /// `known`: the manifest has this user (their entry is never refused for room).
    /// With replicas, the attempt also counts in the database (see `shared`).
    pub async fn begin<'a>(
        &'a self,
        policy: &Policy,
        user: &str,
        known: bool,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'a>, Duration> {
        let attempt = self.begin_local(policy, user, known, ip, now)?;
        self.begin_shared(attempt).await
    }

    /// Like `begin`, for attempts without a user name (API tokens): they count against
    /// the address only, so bad tokens cannot lock anyone's account.
    pub async fn begin_address<'a>(
        &'a self,
        policy: &Policy,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'a>, Duration> {
        let attempt = self.begin_address_local(policy, ip, now)?;
        self.begin_shared(attempt).await
    }

    /// `Some(wait)` while failures block this address (memory first, then, with
    /// replicas, the database). For a right API token: checking one is a hash compare,
    /// so it is not counted as an attempt in flight, and a client's parallel calls
    /// never wait on each other; a blocked address is refused all the same.
    pub async fn address_blocked(
        &self,
        policy: &Policy,
        ip: IpAddr,
        now: Instant,
    ) -> Option<Duration> {
        if policy.max_failures == 0 {
            return None;
        }
        let key = address_key(ip);
        let local = self
            .addresses
            .lock()
            .expect("throttle lock")
            .blocked(&key, now);
        match local {
            Some(wait) => Some(wait),
            None => self.blocked_shared(ADDRESSES, &key).await,
        }
    }

    /// `begin`, counted in this process's memory only.
    pub fn begin_local<'a>(
        &'a self,
        policy: &Policy,
        user: &str,
        known: bool,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'a>, Duration> {
        self.begin_keys(policy, Some(user_key(user)), known, ip, now)
    }

    /// `begin_address`, counted in this process's memory only.
    pub fn begin_address_local<'a>(
        &'a self,
        policy: &Policy,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'a>, Duration> {
        self.begin_keys(policy, None, false, ip, now)
    }

    fn begin_keys<'a>(
        &'a self,
        policy: &Policy,
        user: Option<String>,
        known: bool,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'a>, Duration> {
        let mut attempt = Attempt {
            throttle: self,
            policy: *policy,
            user,
            address: Some(address_key(ip)),
            open: false,
            shared: None,
        };
        if policy.max_failures == 0 {
            return Ok(attempt);
        }
        let mut users = self.users.lock().expect("throttle lock");
        let mut addresses = self.addresses.lock().expect("throttle lock");
        let wait_user = attempt
            .user
            .as_ref()
            .and_then(|key| users.room_for_one_more(key, policy, now));
        let address = attempt.address.as_deref().unwrap_or_default();
        let wait = wait_user.max(addresses.room_for_one_more(address, policy, now));
        if let Some(wait) = wait {
            return Err(wait);
        }
        // Room for a new key: an unknown name waits until a block ends; a new address
        // goes uncounted while the table is full of blocks.
        let user_full = attempt
            .user
            .as_ref()
            .and_then(|key| users.room_for_key(key, policy, now, self.capacity));
        let address_full = addresses.room_for_key(address, policy, now, self.capacity);
        self.forget_evicted(USERS, &mut users);
        self.forget_evicted(ADDRESSES, &mut addresses);
        if user_full.is_some() || address_full.is_some() {
            self.warn_full();
        }
        if let Some(wait) = user_full.filter(|_| !known) {
            return Err(wait);
        }
        if address_full.is_some() {
            attempt.address = None;
        }
        if let Some(key) = &attempt.user {
            users.begin(key.clone(), policy, now, self.capacity);
        }
        if let Some(key) = &attempt.address {
            addresses.begin(key.clone(), policy, now, self.capacity);
        }
        self.forget_evicted(USERS, &mut users);
        self.forget_evicted(ADDRESSES, &mut addresses);
        attempt.open = true;
        Ok(attempt)
    }

    /// Says (at most once a minute) that a table is full of blocks.
    fn warn_full(&self) {
        let mut last = self.warned.lock().expect("throttle lock");
        if last.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
            *last = Some(Instant::now());
            tracing::warn!(
                "the sign-in throttle holds {} blocked names or addresses (a flood of failed \
                 sign-ins?): new unknown names wait, new addresses are not counted, users \
                 in the manifest can still sign in",
                self.capacity
            );
        }
    }

    /// A successful sign-in clears that name's failures (not the address's: one good
    /// account must not buy an attacker more guesses at others).
    pub fn succeed(&self, user: &str) {
        let key = user_key(user);
        let removed = self
            .users
            .lock()
            .expect("throttle lock")
            .entries
            .remove(&key);
        if removed.is_some() || self.store.as_ref().is_some_and(|s| s.shared()) {
            self.persist_cleared(&key);
        }
    }

    /// Keys held now (users, addresses).
    pub fn len(&self) -> (usize, usize) {
        (
            self.users.lock().expect("throttle lock").entries.len(),
            self.addresses.lock().expect("throttle lock").entries.len(),
        )
    }
}

/// A password check in progress, counted against its user name and address.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    policy: Policy,
    /// `None` for attempts that name no user (API tokens).
    user: Option<String>,
    /// `None`: not counted (the table was full of blocks).
    address: Option<String>,
    /// Counted and not yet ended.
    open: bool,
    /// With replicas: when it began (Unix ms) and the keys it counts against in the
    /// database.
    shared: Option<(i64, Vec<(&'static str, String)>)>,
}

impl Attempt<'_> {
    /// The password, code or token was wrong (or the user unknown); `Err(wait)` if this
    /// blocked the name or the address. With replicas, resolves once the failure is in
    /// the database, so the next attempt on any replica counts it.
    pub async fn failed(mut self, now: Instant) -> Result<(), Duration> {
        let (wait, written) = self.end(true, now);
        for write in written {
            if let Err(e) = write.await {
                tracing::error!("cannot count a failed sign-in in the database: {e}");
            }
        }
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// The password, code or token was right.
    pub fn succeeded(mut self) {
        self.end(false, Instant::now());
    }

    /// The password was never checked (the server was too busy): not a failure.
    pub fn not_checked(mut self) {
        self.end(false, Instant::now());
    }

    /// Ends the attempt in memory and queues its end in the database: the wait if it
    /// blocked, and the database's answers (dropping them does not undo the writes).
    fn end(&mut self, failed: bool, now: Instant) -> (Option<Duration>, Vec<Pending<Option<i64>>>) {
        if !std::mem::replace(&mut self.open, false) {
            return (None, Vec::new());
        }
        let t = self.throttle;
        let end = |table: &Mutex<Table>, name: &'static str, key: &str| {
            let mut table = table.lock().expect("throttle lock");
            let wait = table.end(key, failed, &self.policy, now, t.capacity);
            if failed {
                t.persist(name, key, table.entries.get(key));
            }
            t.forget_evicted(name, &mut table);
            wait
        };
        let a = self.user.as_ref().and_then(|key| end(&t.users, USERS, key));
        let b = self
            .address
            .as_ref()
            .and_then(|key| end(&t.addresses, ADDRESSES, key));
        let written = match self.shared.take() {
            Some((begun, keys)) => t.end_shared(&self.policy, begun, keys, failed),
            None => Vec::new(),
        };
        (a.max(b), written)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.end(true, Instant::now());
    }
}

impl Table {
    fn blocked(&self, key: &str, now: Instant) -> Option<Duration> {
        let until = self.entries.get(key)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// `Some(wait)` if `key` is blocked, or if its recent failures and the attempts in
    /// flight could already reach the limit.
    fn room_for_one_more(&self, key: &str, policy: &Policy, now: Instant) -> Option<Duration> {
        if let Some(wait) = self.blocked(key, now) {
            return Some(wait);
        }
        let entry = self.entries.get(key)?;
        let recent = entry
            .failures
            .iter()
            .filter(|t| now.duration_since(**t) <= policy.window)
            .count();
        (recent + entry.in_flight as usize >= policy.max_failures as usize).then_some(BUSY_WAIT)
    }

    /// `Some(wait)` when `key` is new and the table is full of keys that must stay
    /// (blocked, or being checked): wait until the first block ends.
    fn room_for_key(
        &mut self,
        key: &str,
        policy: &Policy,
        now: Instant,
        capacity: usize,
    ) -> Option<Duration> {
        if self.entries.contains_key(key) || self.entries.len() < capacity {
            return None;
        }
        self.make_room(policy, now, capacity);
        if self.entries.len() < capacity {
            return None;
        }
        let first_end = self
            .entries
            .values()
            .filter_map(|e| e.blocked_until)
            .filter(|until| *until > now)
            .min();
        Some(first_end.map_or(BUSY_WAIT, |until| (until - now).max(BUSY_WAIT)))
    }

    fn begin(&mut self, key: String, policy: &Policy, now: Instant, capacity: usize) {
        self.entry(key, policy, now, capacity).in_flight += 1;
    }

    fn end(
        &mut self,
        key: &str,
        failed: bool,
        policy: &Policy,
        now: Instant,
        capacity: usize,
    ) -> Option<Duration> {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
        }
        if failed {
            self.fail(key.to_string(), policy, now, capacity)
        } else {
            None
        }
    }

    fn entry(&mut self, key: String, policy: &Policy, now: Instant, capacity: usize) -> &mut Entry {
        if !self.entries.contains_key(&key) && self.entries.len() >= capacity {
            self.make_room(policy, now, capacity);
        }
        let entry = self.entries.entry(key).or_insert_with(|| Entry {
            failures: VecDeque::new(),
            blocked_until: None,
            last_seen: now,
            in_flight: 0,
        });
        entry.last_seen = now;
        entry
    }

    fn fail(
        &mut self,
        key: String,
        policy: &Policy,
        now: Instant,
        capacity: usize,
    ) -> Option<Duration> {
        let entry = self.entry(key, policy, now, capacity);
        if entry.blocked_until.is_some_and(|b| b > now) {
            return entry.blocked_until.map(|b| b - now);
        }
        entry.blocked_until = None;
        while entry
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            entry.failures.pop_front();
        }
        entry.failures.push_back(now);
        if entry.failures.len() >= policy.max_failures as usize {
            entry.failures.clear();
            entry.blocked_until = Some(now + policy.block);
            return Some(policy.block);
        }
        None
    }

    fn make_room(&mut self, policy: &Policy, now: Instant, capacity: usize) {
        let evicted = &mut self.evicted;
        self.entries.retain(|key, e| {
            let stale = e.stale(now, policy.window);
            if stale {
                evicted.push(key.clone());
            }
            !stale
        });
        if self.entries.len() >= capacity {
            // Still full of live keys: drop the least recently seen one that is neither
            // blocked nor being checked. Blocks stay until they end.
            if let Some(oldest) = self
                .entries
                .iter()
                .filter(|(_, e)| e.in_flight == 0 && e.blocked_until.is_none_or(|b| b <= now))
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
                self.evicted.push(oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    const POLICY: Policy = Policy {
        max_failures: 5,
        window: Duration::from_secs(120),
        block: Duration::from_secs(300),
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// An empty throttle of 100 keys, and the time to start from.
    fn fresh() -> (Throttle, Instant) {
        (Throttle::new(100), Instant::now())
    }

    /// One failed attempt under `POLICY`, as the handlers make it.
    fn fail(t: &Throttle, user: &str, from: &str, at: Instant) -> Result<(), Duration> {
        t.begin_local(&POLICY, user, false, ip(from), at)?
            .failed(at)
            .now_or_never()
            .expect("memory only")
    }

    /// Whether an attempt may start (and it leaves no trace if it may).
    fn check(t: &Throttle, user: &str, from: &str, at: Instant) -> Result<(), Duration> {
        t.begin_local(&POLICY, user, false, ip(from), at)
            .map(Attempt::not_checked)
    }

    #[test]
    fn attempts_being_checked_count_against_the_limit() {
        let (t, now) = fresh();
        let a = ip("192.0.2.1");
        // Five guesses hashing at once: a sixth is turned away before it is checked.
        let open: Vec<_> = (0..5)
            .map(|_| t.begin_local(&POLICY, "alice", false, a, now).unwrap())
            .collect();
        assert_eq!(
            t.begin_local(&POLICY, "alice", false, a, now).unwrap_err(),
            BUSY_WAIT,
            "no sixth guess in parallel"
        );
        // From another address the name is just as busy; another name from that
        // address too (the address has five in flight).
        assert!(
            t.begin_local(&POLICY, "alice", false, ip("192.0.2.2"), now)
                .is_err()
        );
        assert!(t.begin_local(&POLICY, "bob", false, a, now).is_err());
        // All five fail: the name and the address are blocked for the full time.
        let results: Vec<_> = open
            .into_iter()
            .map(|x| x.failed(now).now_or_never().expect("memory only"))
            .collect();
        assert_eq!(results.last().unwrap(), &Err(POLICY.block));
        assert_eq!(
            t.begin_local(&POLICY, "alice", false, ip("192.0.2.9"), now)
                .unwrap_err(),
            POLICY.block
        );
    }

    #[test]
    fn an_abandoned_attempt_is_a_failure_and_a_good_one_is_not() {
        let (t, now) = fresh();
        let a = ip("192.0.2.1");
        for _ in 0..4 {
            drop(t.begin_local(&POLICY, "alice", false, a, now).unwrap());
        }
        // Four abandoned guesses count; successes and unchecked attempts do not.
        for _ in 0..10 {
            t.begin_local(&POLICY, "carol", false, a, now)
                .unwrap()
                .succeeded();
            t.begin_local(&POLICY, "carol", false, a, now)
                .unwrap()
                .not_checked();
        }
        assert_eq!(
            t.begin_local(&POLICY, "alice", false, a, now)
                .unwrap()
                .failed(now)
                .now_or_never()
                .expect("memory only"),
            Err(POLICY.block),
            "the fifth failure blocks"
        );
    }

    #[test]
    fn five_failures_block_the_name_for_five_minutes() {
        let (t, now) = fresh();
        for i in 0..4 {
            assert_eq!(fail(&t, "alice", &format!("10.0.0.{i}"), now), Ok(()));
        }
        assert_eq!(
            fail(&t, "alice", "10.0.0.9", now),
            Err(Duration::from_secs(300))
        );
        assert!(
            check(&t, "alice", "10.9.9.9", now).is_err(),
            "the name is blocked everywhere"
        );
        assert!(check(&t, "bob", "10.9.9.9", now).is_ok());
        assert!(check(&t, "alice", "10.9.9.9", now + Duration::from_secs(301)).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let (t, start) = fresh();
        for i in 0..10 {
            let at = start + Duration::from_secs(i * 40);
            assert_eq!(
                fail(&t, "alice", &format!("10.0.0.{i}"), at),
                Ok(()),
                "failure {i}"
            );
        }
    }

    #[test]
    fn one_address_spraying_names_is_blocked_without_locking_the_names() {
        let (t, now) = fresh();
        for i in 0..5 {
            let _ = fail(&t, &format!("user{i}"), "6.6.6.6", now);
        }
        assert!(check(&t, "user9", "6.6.6.6", now).is_err());
        assert!(check(&t, "user0", "1.2.3.4", now).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::new(1000);
        let now = Instant::now();
        for i in 0..20_000u32 {
            let from = IpAddr::from(i.to_be_bytes()).to_string();
            let _ = fail(&t, &format!("spray{i}"), &from, now);
        }
        let (users, addresses) = t.len();
        assert!(users <= 1000 && addresses <= 1000, "{users} {addresses}");
    }

    #[test]
    fn a_flood_of_failures_from_many_addresses_never_lifts_a_block() {
        let t = Throttle::new(100);
        let now = Instant::now();
        for i in 0..5 {
            let _ = fail(&t, "alice", &format!("10.0.0.{i}"), now);
        }
        assert!(check(&t, "alice", "10.9.9.9", now).is_err());
        // 10,000 cheap failures for other names from 2,000 addresses (five each).
        for i in 0..10_000u32 {
            let from = IpAddr::from((0x0b00_0000 + i / 5).to_be_bytes()).to_string();
            let _ = fail(&t, &format!("spray{i}"), &from, now);
        }
        assert_eq!(
            check(&t, "alice", "10.9.9.9", now).unwrap_err(),
            POLICY.block,
            "still blocked"
        );
        let (users, addresses) = t.len();
        assert!(users <= 100 && addresses <= 100, "{users} {addresses}");
    }

    #[test]
    fn a_table_full_of_blocks_refuses_new_keys_until_the_first_block_ends() {
        let t = Throttle::new(3);
        let now = Instant::now();
        for name in ["a", "b", "c"] {
            for i in 0..5 {
                let _ = fail(&t, name, &format!("10.0.{i}.1"), now);
            }
        }
        let later = now + Duration::from_secs(10);
        assert_eq!(
            check(&t, "d", "10.1.1.1", later).unwrap_err(),
            POLICY.block - Duration::from_secs(10)
        );
        for name in ["a", "b", "c"] {
            assert!(check(&t, name, "10.1.1.1", later).is_err(), "{name} kept");
        }
        assert!(check(&t, "d", "10.1.1.1", now + POLICY.block).is_ok());
        // A user the manifest knows still signs in, from a new address too (the full
        // address table does not count it), and is still throttled by name.
        for _ in 0..4 {
            let attempt = t
                .begin_local(&POLICY, "erin", true, ip("10.9.9.9"), later)
                .unwrap();
            assert_eq!(
                attempt.failed(later).now_or_never().expect("memory only"),
                Ok(())
            );
        }
        let fifth = t
            .begin_local(&POLICY, "erin", true, ip("10.9.9.8"), later)
            .unwrap();
        assert_eq!(
            fifth.failed(later).now_or_never().expect("memory only"),
            Err(POLICY.block),
            "the name still counts"
        );
    }

    #[test]
    fn success_clears_the_name_only() {
        let (t, now) = fresh();
        for _ in 0..4 {
            let _ = fail(&t, "alice", "1.1.1.1", now);
        }
        t.succeed("alice");
        assert_eq!(fail(&t, "alice", "2.2.2.2", now), Ok(()));
        assert_eq!(
            fail(&t, "bob", "1.1.1.1", now),
            Err(Duration::from_secs(300)),
            "the address kept its count"
        );
    }

    #[test]
    fn zero_disables() {
        let t = Throttle::new(10);
        let off = Policy {
            max_failures: 0,
            ..POLICY
        };
        let now = Instant::now();
        for _ in 0..50 {
            let attempt = t.begin_local(&off, "a", false, ip("1.1.1.1"), now).unwrap();
            assert_eq!(
                attempt.failed(now).now_or_never().expect("memory only"),
                Ok(())
            );
        }
        assert_eq!(t.len(), (0, 0));
    }

    #[test]
    fn ipv6_hosts_share_their_64() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:1.2.3.4")), "1.2.3.4");
    }
}
