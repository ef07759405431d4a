//! Session cookies: any value under any name is refused or opens to a session, without
//! a panic; a sealed cookie opens to exactly what was sealed; and changing any one byte
//! of it, or its name, is always refused.

#![no_main]

use arbitrary::Arbitrary;
use ftw::auth::session::{Codec, Session};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    name: String,
    value: String,
    user: String,
    issued: u64,
    active: u64,
    id: [u8; 16],
    fingerprint: [u8; 16],
    at: usize,
    byte: u8,
}

fuzz_target!(|input: Input| {
    let codec = Codec::new([7; 32]);
    let _ = codec.open(&input.name, &input.value);

    // User names never hold `|` (the manifest refuses them).
    if input.user.contains('|') {
        return;
    }
    let session = Session {
        user: input.user,
        issued: input.issued,
        active: input.active,
        id: input.id,
        fingerprint: input.fingerprint,
        outside: None,
    };
    let sealed = codec.seal("ftw_session", &session);
    assert_eq!(codec.open("ftw_session", &sealed), Ok(session.clone()));
    assert!(Codec::new([8; 32]).open("ftw_session", &sealed).is_err());
    if input.name != "ftw_session" {
        assert!(codec.open(&input.name, &sealed).is_err(), "renamed");
    }
    let mut bytes = sealed.clone().into_bytes();
    let at = input.at % bytes.len();
    if bytes[at] == input.byte {
        return;
    }
    bytes[at] = input.byte;
    if let Ok(tampered) = String::from_utf8(bytes) {
        assert!(
            codec.open("ftw_session", &tampered).is_err(),
            "{sealed} changed at {at} to {tampered} still opens"
        );
    }
    // Cut short anywhere: refused.
    let cut = input.at % sealed.len();
    assert!(codec.open("ftw_session", &sealed[..cut]).is_err());
});
