//! Users who leave the manifest stay signed out when they come back. Sessions are
//! stateless cookies tied to the user's name and password hash, so removing a user and
//! later adding them again with the same hash would make their old cookies valid again.
//! ftw keeps the manifest's user names in the state database; a name that was there and
//! is gone (at a reload, or at a start after the manifest changed while ftw was down)
//! gets a floor: every session of that user issued until then is over, for good. Their
//! passkeys go too: a user added back starts without them.

use crate::store::{Store, StoreError};

use super::revoked::Revoked;

/// How long a removed user's floor is kept: longer than any session can live.
const FLOOR_KEPT_SECS: u64 = 10 * 366 * 24 * 3600;

/// Compares `users` (the manifest's names now) with the names stored last time, ends
/// every session of those that left, and stores `users`. Returns the names that left.
pub async fn retire_departed(
    store: &dyn Store,
    revoked: &Revoked,
    mut users: Vec<String>,
    now: u64,
) -> Result<Vec<String>, StoreError> {
    users.sort();
    users.dedup();
    let known = store.known_users().await?.unwrap_or_default();
    let departed: Vec<String> = known
        .into_iter()
        .filter(|name| users.binary_search(name).is_err())
        .collect();
    for name in &departed {
        revoked
            .end_all_before(name, now, now + FLOOR_KEPT_SECS)
            .await?;
        for passkey in store.passkeys(name).await? {
            store.remove_passkey(name, &passkey.id).await?;
        }
    }
    store.set_known_users(users).await?;
    Ok(departed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PasskeyRecord, Sqlite};

    #[tokio::test]
    async fn a_user_who_left_loses_sessions_and_passkeys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        let revoked = Revoked::new(100);
        let users = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
        retire_departed(&store, &revoked, users(&["alice", "bob"]), 1_000)
            .await
            .unwrap();
        for user in ["alice", "bob"] {
            let key = PasskeyRecord {
                id: format!("key-of-{user}"),
                user: user.into(),
                name: "laptop".into(),
                passkey: "{}".into(),
                fingerprint: "ab".into(),
                created_ms: 1,
                used_ms: None,
            };
            store.add_passkey(key).await.unwrap();
        }
        let left = retire_departed(&store, &revoked, users(&["alice"]), 2_000)
            .await
            .unwrap();
        assert_eq!(left, ["bob"]);
        assert!(store.passkeys("bob").await.unwrap().is_empty());
        assert_eq!(store.passkeys("alice").await.unwrap().len(), 1);
        let old = crate::auth::session::Session::new("bob", [0; 16], 1_500);
        assert!(revoked.is_revoked(&old));
    }
}
