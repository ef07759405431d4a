//! Sessions ended by logout before their time. Cookies are stateless, so logging out
//! must remember the session id until the cookie would have expired anyway.
//!
//! Memory is bounded: at most `capacity` ids are kept. When it is full and nothing has
//! expired, the entry closest to expiry is folded into a per-user floor ("sessions of
//! this user issued at or before T are over"). That signs the user out on their other
//! devices too, which is the safe way to fail; the floor map holds at most one entry per
//! user, and only users who can sign in can log out.

use std::collections::HashMap;
use std::sync::Mutex;

use super::session::Session;

pub const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Debug)]
pub struct Revoked {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// session id -> (user, issued, expires)
    ids: HashMap<[u8; 16], (String, u64, u64)>,
    /// user -> sessions issued at or before this time are revoked
    floors: HashMap<String, u64>,
}

impl Revoked {
    pub fn new(capacity: usize) -> Revoked {
        Revoked {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    /// Revokes `session`, which would have expired at `expires`.
    pub fn revoke(&self, session: &Session, expires: u64, now: u64) {
        let mut inner = self.inner.lock().expect("revocation lock");
        if inner.ids.len() >= self.capacity {
            inner.ids.retain(|_, &mut (_, _, exp)| exp > now);
        }
        if inner.ids.len() >= self.capacity {
            let oldest = inner
                .ids
                .iter()
                .min_by_key(|(_, (_, _, exp))| *exp)
                .map(|(id, (user, issued, _))| (*id, user.clone(), *issued));
            if let Some((id, user, issued)) = oldest {
                inner.ids.remove(&id);
                let floor = inner.floors.entry(user).or_insert(0);
                *floor = (*floor).max(issued);
            }
        }
        inner
            .ids
            .insert(session.id, (session.user.clone(), session.issued, expires));
    }

    pub fn is_revoked(&self, session: &Session) -> bool {
        let inner = self.inner.lock().expect("revocation lock");
        inner.ids.contains_key(&session.id)
            || inner
                .floors
                .get(&session.user)
                .is_some_and(|&floor| session.issued <= floor)
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
    fn revoked_sessions_stay_revoked_until_expiry() {
        let r = Revoked::new(10);
        let s = Session::new("alice", [0; 16], 100);
        assert!(!r.is_revoked(&s));
        r.revoke(&s, 200, 100);
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
            r.revoke(s, 1000 + i as u64, 150);
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
        r.revoke(&Session::new("a", [0; 16], 1), 10, 5);
        r.revoke(&Session::new("a", [0; 16], 2), 10, 5);
        let fresh = Session::new("a", [0; 16], 50);
        r.revoke(&fresh, 500, 100);
        assert_eq!(r.len(), 1);
        assert!(r.is_revoked(&fresh));
    }
}
