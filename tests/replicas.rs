//! Several `ftw serve` on one PostgreSQL (issue 14). For now: the throwaway cluster the
//! replica tests will run on starts, answers, and goes away with the test.

use crate::support::postgres::Postgres;

#[test]
fn a_throwaway_postgresql_cluster_starts_answers_and_stops() {
    let Some(pg) = Postgres::start() else { return };
    assert_eq!(pg.psql("SELECT 1 + 1"), "2");
    assert_eq!(pg.psql("SELECT current_user"), "ftw");
    let port = pg.port;
    drop(pg);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server outlived the test"
    );
}
