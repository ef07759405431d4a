//! Sessions ended by logout before their time. Cookies are stateless, so logging out
//! must remember the session id until the cookie would have expired anyway.
//!
//! Memory is bounded: at most `capacity` ids are kept. When it is full and nothing has
//! expired, the entry closest to expiry is folded into a per-user floor ("sessions of
//! this user issued at or before T are over"). That signs the user out on their other
//! devices too, which is the safe way to fail; the floor map holds at most one entry per
//! user, and only users who can sign in can log out.
//!
//! Every revocation and floor is also written to the state database, and read back at
//! start-up, so a restart does not bring a logged-out cookie back. Checks stay in
//! memory: they run on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::session::Session;
use crate::store::{Revocation, Store};

pub const DEFAULT_CAPACITY: usize = 100_000;

pub struct Revoked {
    inner: Mutex<Inner>,
    capacity: usize,
    store: Option<Arc<dyn Store>>,
}

impl std::fmt::Debug for Revoked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revoked")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn revoked(&self, session: &Session) -> bool {
        self.ids.contains_key(&session.id)
            || self
                .floors
                .get(&session.user)
                .is_some_and(|&floor| session.issued <= floor)
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// session id -> (user, issued, expires)
    ids: HashMap<[u8; 16], (String, u64, u64)>,
    /// user -> sessions issued at or before this time are revoked
    floors: HashMap<String, u64>,
}

impl Revoked {
    /// Revocations kept in memory only (unit tests).
    pub fn new(capacity: usize) -> Revoked {
        Revoked {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            store: None,
        }
    }

    /// Revocations written to `store`, starting from those it kept (beyond `capacity`,
    /// the ones closest to expiry are folded into floors, as `revoke` does).
    pub fn restore(capacity: usize, store: Arc<dyn Store>, kept: Vec<Revocation>) -> Revoked {
        let revoked = Revoked {
            store: Some(store),
            ..Revoked::new(capacity)
        };
        let mut sessions = Vec::new();
        {
            let mut inner = revoked.inner.lock().expect("revocation lock");
            for r in kept {
                match r.id {
                    Some(_) => sessions.push(r),
                    None => {
                        let floor = inner.floors.entry(r.user).or_insert(0);
                        *floor = (*floor).max(r.issued);
                    }
                }
            }
            sessions.sort_by_key(|r| std::cmp::Reverse(r.expires));
            let folded = sessions.split_off(sessions.len().min(revoked.capacity));
            for r in sessions {
                if let Some(id) = r.id {
                    inner.ids.insert(id, (r.user, r.issued, r.expires));
                }
            }
            for r in folded {
                let floor = inner.floors.entry(r.user.clone()).or_insert(0);
                *floor = (*floor).max(r.issued);
                if let Some(store) = &revoked.store {
                    drop(store.revoke_session(Revocation { id: None, ..r }));
                }
            }
        }
        revoked
    }

    /// Revokes `session`, which would have expired at `expires`. Resolves once the
    /// revocation is stored (at once without a store).
    pub fn revoke(&self, session: &Session, expires: u64, now: u64) -> crate::store::Pending<()> {
        self.revoke_if(session, expires, now, false)
            .unwrap_or_else(|| Box::pin(async { Ok(()) }))
    }

    /// Revokes `session` unless it is revoked already, in one step: of two requests
    /// that race to use a single-use session, one gets `Some`, the other `None`.
    pub fn revoke_once(
        &self,
        session: &Session,
        expires: u64,
        now: u64,
    ) -> Option<crate::store::Pending<()>> {
        self.revoke_if(session, expires, now, true)
    }

    fn revoke_if(
        &self,
        session: &Session,
        expires: u64,
        now: u64,
        only_if_new: bool,
    ) -> Option<crate::store::Pending<()>> {
        let mut folded = None;
        let mut inner = self.inner.lock().expect("revocation lock");
        if only_if_new && inner.revoked(session) {
            return None;
        }
        if inner.ids.len() >= self.capacity {
            inner.ids.retain(|_, &mut (_, _, exp)| exp > now);
        }
        if inner.ids.len() >= self.capacity {
            let oldest = inner
                .ids
                .iter()
                .min_by_key(|(_, (_, _, exp))| *exp)
                .map(|(id, (user, issued, exp))| (*id, user.clone(), *issued, *exp));
            if let Some((id, user, issued, exp)) = oldest {
                inner.ids.remove(&id);
                let floor = inner.floors.entry(user.clone()).or_insert(0);
                *floor = (*floor).max(issued);
                folded = Some(Revocation {
                    id: None,
                    user,
                    issued,
                    expires: exp,
                });
            }
        }
        inner
            .ids
            .insert(session.id, (session.user.clone(), session.issued, expires));
        drop(inner);
        let Some(store) = &self.store else {
            return Some(Box::pin(async { Ok(()) }));
        };
        if let Some(floor) = folded {
            drop(store.revoke_session(floor));
        }
        Some(store.revoke_session(Revocation {
            id: Some(session.id),
            user: session.user.clone(),
            issued: session.issued,
            expires,
        }))
    }

    /// Ends every session of `user` issued at or before `at` (the user was removed):
    /// kept until `expires`. Resolves once stored.
    pub fn end_all_before(&self, user: &str, at: u64, expires: u64) -> crate::store::Pending<()> {
        {
            let mut inner = self.inner.lock().expect("revocation lock");
            let floor = inner.floors.entry(user.to_string()).or_insert(0);
            *floor = (*floor).max(at);
        }
        match &self.store {
            Some(store) => store.revoke_session(Revocation {
                id: None,
                user: user.to_string(),
                issued: at,
                expires,
            }),
            None => Box::pin(async { Ok(()) }),
        }
    }

    /// Whether `session` was revoked by this ftw (memory only; see `check`).
    pub fn is_revoked(&self, session: &Session) -> bool {
        self.inner.lock().expect("revocation lock").revoked(session)
    }

    /// Whether `session` was revoked: here, or, with replicas sharing the database, by
    /// any of them a moment ago (asked on every request: a sign-out on one replica is
    /// refused by the next request to another). A database that cannot answer counts
    /// as "revoked": a sign-out must never be forgotten for want of an answer.
    pub async fn check(&self, session: &Session) -> bool {
        if self.is_revoked(session) {
            return true;
        }
        let Some(store) = self.store.as_ref().filter(|s| s.shared()) else {
            return false;
        };
        match store
            .session_revoked(session.id, &session.user, session.issued)
            .await
        {
            Ok(revoked) => revoked,
            Err(e) => {
                tracing::error!(
                    "cannot ask the database whether a session was signed out ({e}); refusing it"
                );
                true
            }
        }
    }

    /// Uses a single-use session (a sign-in step, a provider's state): true for the one
    /// caller that did, of any number racing here or, with replicas, anywhere. Resolves
    /// once the use is stored; a database that cannot answer refuses the use.
    pub async fn use_once(&self, session: &Session, expires: u64, now: u64) -> bool {
        let Some(store) = self.store.as_ref().filter(|s| s.shared()) else {
            let Some(stored) = self.revoke_once(session, expires, now) else {
                return false;
            };
            if let Err(e) = stored.await {
                tracing::error!("cannot store that a single-use session was used: {e}");
            }
            return true;
        };
        if self.is_revoked(session) {
            return false;
        }
        let revocation = Revocation {
            id: Some(session.id),
            user: session.user.clone(),
            issued: session.issued,
            expires,
        };
        match store.revoke_once(revocation).await {
            Ok(true) => {
                drop(self.revoke(session, expires, now));
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::error!(
                    "cannot store that a single-use session was used ({e}); refusing it"
                );
                false
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().expect("revocation lock").ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_use_session_is_used_once_even_by_racing_requests() {
        let r = std::sync::Arc::new(Revoked::new(10));
        let s = Session::new("alice", [0; 16], 100);
        let winners: usize = (0..8)
            .map(|_| {
                let (r, s) = (std::sync::Arc::clone(&r), s.clone());
                std::thread::spawn(move || usize::from(r.revoke_once(&s, 200, 100).is_some()))
            })
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(winners, 1);
        assert!(r.is_revoked(&s));
    }

    #[test]
    fn revoked_sessions_stay_revoked_until_expiry() {
        let r = Revoked::new(10);
        let s = Session::new("alice", [0; 16], 100);
        assert!(!r.is_revoked(&s));
        drop(r.revoke(&s, 200, 100));
        assert!(r.is_revoked(&s));
        assert!(
            !r.is_revoked(&Session::new("alice", [0; 16], 100)),
            "other sessions live on"
        );
    }

    #[test]
    fn memory_is_bounded_and_overflow_fails_safe() {
        let r = Revoked::new(3);
        let sessions: Vec<Session> = (0..5)
            .map(|i| Session::new("bob", [0; 16], 100 + i))
            .collect();
        for (i, s) in sessions.iter().enumerate() {
            drop(r.revoke(s, 1000 + i as u64, 150));
        }
        assert_eq!(r.len(), 3);
        for s in &sessions {
            assert!(r.is_revoked(s), "every revoked session stays revoked");
        }
        assert!(!r.is_revoked(&Session::new("carol", [0; 16], 100)));
    }

    #[test]
    fn expired_entries_make_room() {
        let r = Revoked::new(2);
        drop(r.revoke(&Session::new("a", [0; 16], 1), 10, 5));
        drop(r.revoke(&Session::new("a", [0; 16], 2), 10, 5));
        let fresh = Session::new("a", [0; 16], 50);
        drop(r.revoke(&fresh, 500, 100));
        assert_eq!(r.len(), 1);
        assert!(r.is_revoked(&fresh));
    }
}
