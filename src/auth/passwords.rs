//! Checking passwords at sign-in without hurting the server: argon2 runs on tokio's
//! blocking threads, at most one verification per CPU at a time, with a bounded number
//! of sign-ins allowed to wait (beyond that the answer is "busy, retry" at once).
//!
//! An unknown name is verified against a dummy hash, so it costs a hash like a wrong
//! password does. Users may have hashes of different costs (one made with `--memory
//! 8MiB`, another with the default), so one dummy cost would tell names apart by time:
//! instead each unknown name is given the cost of one of the users, picked by a keyed
//! hash of the name (stable across restarts, as the key is), in the same proportions as
//! the users have them. An unknown name then takes as long as some real user's wrong
//! password, every time, and timing says nothing about which names exist.
//!
//! argon2's working memory (19 MiB at the default cost) is reused: at most one buffer
//! per CPU, handed from one verification to the next, and freed after ten seconds without
//! sign-ins. Allocating it afresh each time costs a page fault per 4 KiB, and the
//! allocator kept the freed blocks: a login flood left ftw hundreds of MB larger.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use argon2::Block;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::password;

/// Sign-ins allowed to queue per CPU before new ones are turned away.
const WAITING_PER_PERMIT: usize = 32;
/// Working memory is freed after this long without a sign-in.
const KEEP_MEMORY: Duration = Duration::from_secs(10);

/// Buffers for argon2, between verifications.
#[derive(Debug)]
struct Memory {
    free: Vec<Vec<Block>>,
    last_used: Instant,
    /// A task is waiting to free the buffers once they go unused.
    reaper: bool,
}

#[derive(Debug)]
pub struct Verifier {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// The dummy hashes for unknown names.
    dummies: RwLock<Dummies>,
    /// Picks an unknown name's dummy (see the module's documentation).
    name_key: [u8; 32],
    memory: Arc<Mutex<Memory>>,
}

/// One dummy hash per cost the users have, and each user's cost as an index into them.
#[derive(Debug)]
struct Dummies {
    hashes: Vec<(password::Cost, String)>,
    per_user: Vec<usize>,
}

impl Dummies {
    fn new(costs: &[password::Cost], old: Option<&Dummies>) -> Dummies {
        let costs = if costs.is_empty() {
            &[password::DEFAULT_COST][..]
        } else {
            costs
        };
        let mut hashes: Vec<(password::Cost, String)> = Vec::new();
        let mut per_user = Vec::with_capacity(costs.len());
        for cost in costs {
            let at = match hashes.iter().position(|(c, _)| c == cost) {
                Some(at) => at,
                None => {
                    let kept = old
                        .and_then(|o| o.hashes.iter().find(|(c, _)| c == cost))
                        .map(|(_, h)| h.clone());
                    hashes.push((*cost, kept.unwrap_or_else(|| dummy_hash(*cost))));
                    hashes.len() - 1
                }
            };
            per_user.push(at);
        }
        Dummies { hashes, per_user }
    }

    /// The dummy hash for an unknown `name`.
    fn for_name(&self, key: &[u8; 32], name: &str) -> &str {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
        mac.update(name.as_bytes());
        let digest = mac.finalize().into_bytes();
        let pick = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let user = usize::try_from(pick % self.per_user.len() as u64).unwrap_or(0);
        &self.hashes[self.per_user[user]].1
    }
}

/// Too many sign-ins are already waiting.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Verifier {
    pub fn new(concurrency: usize) -> Verifier {
        let concurrency = concurrency.max(1);
        Verifier {
            permits: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting: concurrency * WAITING_PER_PERMIT,
            dummies: RwLock::new(Dummies::new(&[], None)),
            name_key: super::random(),
            memory: Arc::new(Mutex::new(Memory {
                free: Vec::new(),
                last_used: Instant::now(),
                reaper: false,
            })),
        }
    }

    /// Gives unknown names the costs of the users' `hashes`, in their proportions
    /// (call it whenever the users change; hashes of costs seen before are kept).
    pub fn match_cost<'a>(&self, hashes: impl IntoIterator<Item = &'a str>) {
        let costs: Vec<password::Cost> = hashes
            .into_iter()
            .map(|h| password::cost_of(h).unwrap_or(password::DEFAULT_COST))
            .collect();
        let mut dummies = self.dummies.write().expect("dummy lock");
        let same = dummies.per_user.len() == costs.len()
            && dummies
                .per_user
                .iter()
                .zip(&costs)
                .all(|(at, cost)| dummies.hashes[*at].0 == *cost);
        if !same {
            *dummies = Dummies::new(&costs, Some(&dummies));
        }
    }

    /// One verification per available CPU; unknown names are matched to costs with a
    /// key derived from `secret` (so the same name costs the same after a restart).
    pub fn for_this_machine(secret: &[u8; 32]) -> Verifier {
        use hmac::{Hmac, KeyInit, Mac};
        let mut verifier =
            Verifier::new(std::thread::available_parallelism().map_or(1, |n| n.get()));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(b"ftw: the dummy cost of an unknown user name");
        verifier.name_key = mac.finalize().into_bytes().into();
        verifier
    }

    /// Whether `password` matches `hash`; `None` (no such user) is checked against the
    /// dummy hash and always fails. Over-long passwords fail before any hashing.
    ///
    /// A caller that goes away (the client hung up) gives its place in the queue back,
    /// but a verification already started keeps its permit until argon2 is done: the
    /// permits bound the hashing that really runs, not just the requests that wait.
    pub async fn verify(
        &self,
        hash: Option<&str>,
        name: &str,
        password: &str,
    ) -> Result<bool, Busy> {
        if password::check_length(password.as_bytes()).is_err() {
            return Ok(false);
        }
        let place = Place::take(&self.waiting, self.max_waiting)?;
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        drop(place);
        let permit = permit.map_err(|_| Busy)?;
        let known = hash.is_some();
        let hash = match hash {
            Some(h) => h.to_string(),
            None => self
                .dummies
                .read()
                .expect("dummy lock")
                .for_name(&self.name_key, name)
                .to_string(),
        };
        let password = password.to_string();
        let pool = Arc::clone(&self.memory);
        let runtime = tokio::runtime::Handle::current();
        let matched = tokio::task::spawn_blocking(move || {
            let mut memory = take_memory(&pool);
            let matched = password::verify_with_memory(password.as_bytes(), &hash, &mut memory);
            // The buffer is back before the permit goes: never more buffers than permits.
            give_back(&pool, memory, &runtime);
            drop(permit);
            matched
        })
        .await
        .unwrap_or(false);
        Ok(known && matched)
    }

    /// Buffers kept for the next sign-ins.
    #[cfg(test)]
    fn kept_buffers(&self) -> usize {
        self.memory.lock().expect("memory lock").free.len()
    }
}

/// A place in the queue of sign-ins waiting for a permit, given back when dropped
/// (also when the caller is dropped mid-wait).
struct Place<'a>(&'a AtomicUsize);

impl<'a> Place<'a> {
    fn take(waiting: &'a AtomicUsize, max: usize) -> Result<Place<'a>, Busy> {
        if waiting.fetch_add(1, Ordering::SeqCst) >= max {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        Ok(Place(waiting))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn take_memory(pool: &Mutex<Memory>) -> Vec<Block> {
    pool.lock()
        .expect("memory lock")
        .free
        .pop()
        .unwrap_or_default()
}

/// Keeps a buffer for the next verification, and makes sure the buffers are freed once
/// sign-ins stop.
fn give_back(pool: &Arc<Mutex<Memory>>, buffer: Vec<Block>, runtime: &tokio::runtime::Handle) {
    let mut memory = pool.lock().expect("memory lock");
    memory.free.push(buffer);
    memory.last_used = Instant::now();
    if memory.reaper {
        return;
    }
    memory.reaper = true;
    let shared = Arc::clone(pool);
    runtime.spawn(async move {
        let mut wait = KEEP_MEMORY;
        loop {
            tokio::time::sleep(wait).await;
            let mut memory = shared.lock().expect("memory lock");
            let idle = memory.last_used.elapsed();
            if idle >= KEEP_MEMORY {
                memory.free = Vec::new();
                memory.reaper = false;
                return;
            }
            wait = KEEP_MEMORY - idle;
        }
    });
}

fn dummy_hash(cost: password::Cost) -> String {
    let dummy = super::b64(&super::random::<24>());
    password::hash_with(dummy.as_bytes(), cost).expect("hashing a fixed-length password")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_costing(password: &[u8], m: u32, t: u32) -> String {
        password::hash_with(password, password::Cost { m, t, p: 1 }).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn working_memory_is_reused_then_freed_when_idle() {
        let v = Verifier::new(2);
        let hash = password::hash(b"right").unwrap();
        for _ in 0..3 {
            assert_eq!(v.verify(Some(&hash), "someone", "right").await, Ok(true));
        }
        assert_eq!(v.kept_buffers(), 1, "one at a time: one buffer, reused");
        let (a, b) = tokio::join!(
            v.verify(Some(&hash), "someone", "x"),
            v.verify(None, "someone", "y")
        );
        assert_eq!((a, b), (Ok(false), Ok(false)));
        assert!(v.kept_buffers() <= 2, "never more than one per permit");
        tokio::time::sleep(KEEP_MEMORY + Duration::from_secs(1)).await;
        assert_eq!(v.kept_buffers(), 0, "freed once sign-ins stop");
    }

    #[tokio::test]
    async fn abandoned_sign_ins_free_their_place_but_not_a_running_permit() {
        let v = Verifier::new(1);
        let costly = hash_costing(b"right", 65_536, 8);
        // The first caller starts hashing and gives up; three more give up queued.
        for _ in 0..4 {
            let gave_up = tokio::time::timeout(
                Duration::from_millis(1),
                v.verify(Some(&costly), "someone", "x"),
            )
            .await;
            assert!(gave_up.is_err());
        }
        assert_eq!(v.waiting.load(Ordering::SeqCst), 0, "places given back");
        assert_eq!(
            v.permits.available_permits(),
            0,
            "the abandoned hashing still holds its permit"
        );
        assert_eq!(v.verify(Some(&costly), "someone", "right").await, Ok(true));
        assert_eq!(v.permits.available_permits(), 1);
    }

    #[tokio::test]
    async fn known_unknown_and_long() {
        let v = Verifier::new(1);
        let hash = password::hash(b"right").unwrap();
        assert_eq!(v.verify(Some(&hash), "someone", "right").await, Ok(true));
        assert_eq!(v.verify(Some(&hash), "someone", "wrong").await, Ok(false));
        assert_eq!(v.verify(None, "someone", "right").await, Ok(false));
        assert_eq!(
            v.verify(Some(&hash), "someone", &"x".repeat(1025)).await,
            Ok(false)
        );
    }

    #[test]
    fn unknown_names_get_the_users_costs_in_their_proportions() {
        let v = Verifier::for_this_machine(&[7; 32]);
        let cheap = hash_costing(b"x", 8192, 1);
        let dear = hash_costing(b"y", 32768, 2);
        v.match_cost([cheap.as_str(), dear.as_str(), dear.as_str()]);
        let cost_for = |name: &str| {
            let dummies = v.dummies.read().unwrap();
            password::cost_of(dummies.for_name(&v.name_key, name)).unwrap()
        };
        let (cheap_cost, dear_cost) = (
            password::cost_of(&cheap).unwrap(),
            password::cost_of(&dear).unwrap(),
        );
        let mut dear_count = 0;
        for i in 0..3000 {
            let name = format!("nobody{i}");
            let cost = cost_for(&name);
            assert!(cost == cheap_cost || cost == dear_cost, "{cost:?}");
            assert_eq!(cost_for(&name), cost, "the same name, the same cost");
            dear_count += usize::from(cost == dear_cost);
        }
        assert!((1800..2200).contains(&dear_count), "{dear_count} of 3000");
        // The same key after a restart gives each name the same cost.
        let again = Verifier::for_this_machine(&[7; 32]);
        again.match_cost([cheap.as_str(), dear.as_str(), dear.as_str()]);
        let dummies = again.dummies.read().unwrap();
        assert_eq!(
            password::cost_of(dummies.for_name(&again.name_key, "nobody1")),
            Some(cost_for("nobody1"))
        );
        // Hashes of costs seen before are kept across reloads.
        let before = v.dummies.read().unwrap().hashes.clone();
        v.match_cost([dear.as_str(), cheap.as_str()]);
        let after = v.dummies.read().unwrap().hashes.clone();
        assert!(after.iter().all(|h| before.contains(h)));
    }
}
