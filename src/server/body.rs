//! Reading request bodies without letting a client hold ftw hostage: a size cap
//! checked as bytes arrive (and up front from `Content-Length`), an idle timeout
//! between chunks, and a minimum rate over the whole body (after the first client
//! timeout, at least `MIN_RATE` bytes a second on average, as nginx's and Apache's
//! request timeouts do), so a client that sends one byte a second is dropped instead of
//! holding a connection for as long as it likes.

use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt, stream};
use warp::{Filter, Rejection};

use super::problem::Problem;

/// Form fields of one request body, by name (a name can repeat).
pub type Fields = Vec<(String, String)>;

/// A request body as warp hands it to a handler (`warp::body::stream()`).
pub trait BodyStream:
    Stream<Item = Result<Self::Chunk, warp::Error>> + Send + Unpin + 'static
{
    type Chunk: Buf + Send + 'static;
}

impl<S, B> BodyStream for S
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin + 'static,
    B: Buf + Send + 'static,
{
    type Chunk = B;
}

/// The slowest average a body may arrive at, after its first `idle` (bytes a second).
pub const MIN_RATE: u64 = 1024;

/// A body stream whose chunks must each arrive within `idle`, and which must arrive in
/// all within `idle` plus one second per `MIN_RATE` bytes; chunks become `Bytes`.
pub fn with_idle_timeout(
    body: impl BodyStream,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
    let start = tokio::time::Instant::now();
    Box::pin(stream::unfold(
        Some((body, 0u64)),
        move |state| async move {
            let (mut body, received) = state?;
            let deadline = start + idle + Duration::from_millis(received * 1000 / MIN_RATE);
            let wait = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(idle);
            match tokio::time::timeout(wait, body.next()).await {
                Ok(Some(Ok(mut chunk))) => {
                    let bytes = chunk.copy_to_bytes(chunk.remaining());
                    let received = received + bytes.len() as u64;
                    Some((Ok(bytes), Some((body, received))))
                }
                Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e)), None)),
                Ok(None) => None,
                Err(_) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped sending the body",
                    )),
                    None,
                )),
            }
        },
    ))
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_all<S>(mut body: S, limit: u64) -> Result<Vec<u8>, Problem>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => Problem::SlowClient,
            _ => Problem::BadBody,
        })?;
        if bytes.len() as u64 + chunk.len() as u64 > limit {
            return Err(Problem::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Parses an urlencoded body (UTF-8 only).
pub fn parse_form(bytes: &[u8]) -> Result<Fields, Problem> {
    bytes
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[..0]),
            };
            Ok((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

/// One urlencoded name or value: `+` is a space, `%XX` a byte, and the bytes must be
/// UTF-8. A lenient decoder would hand the program U+FFFD in place of what was sent.
fn form_decode(part: &[u8]) -> Result<String, Problem> {
    let spaced: Vec<u8> = part
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(bytes).map_err(|_| Problem::BadBody)
}

/// A small body of `content_type`: the declared length is checked before anything
/// else, then the body is read with the idle timeout and the cap.
fn small_body(
    content_type: &'static str,
    limit: u64,
    idle: Duration,
) -> impl Filter<Extract = (Vec<u8>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and_then(
            move |sent: Option<String>, length: Option<u64>, body| async move {
                if length.is_some_and(|n| n > limit) {
                    return Err(Rejection::from(Problem::TooLarge));
                }
                if !sent.as_deref().is_some_and(|t| t.starts_with(content_type)) {
                    return Err(Problem::UnsupportedForm.into());
                }
                Ok(read_all(with_idle_timeout(body, idle), limit).await?)
            },
        )
}

/// A filter for small urlencoded forms (sign-in, sign-out, cancel).
pub fn form(
    limit: u64,
    idle: Duration,
) -> impl Filter<Extract = (Fields,), Error = Rejection> + Clone {
    small_body("application/x-www-form-urlencoded", limit, idle)
        .and_then(|bytes: Vec<u8>| async move { parse_form(&bytes).map_err(Rejection::from) })
}

/// A filter for small JSON bodies (the passkey ceremonies' answers).
pub fn json(
    limit: u64,
    idle: Duration,
) -> impl Filter<Extract = (serde_json::Value,), Error = Rejection> + Clone {
    small_body("application/json", limit, idle).and_then(|bytes: Vec<u8>| async move {
        serde_json::from_slice(&bytes).map_err(|_| Rejection::from(Problem::BadBody))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &str) -> Vec<(String, String)> {
        parse_form(body.as_bytes()).unwrap()
    }

    #[test]
    fn forms_decode_plus_percent_and_keep_order_and_repeats() {
        assert_eq!(
            parsed("a=1+2&b=%24(id)&a=%E2%9C%93&flag&&c="),
            [
                ("a".into(), "1 2".into()),
                ("b".into(), "$(id)".into()),
                ("a".into(), "✓".into()),
                ("flag".into(), String::new()),
                ("c".into(), String::new()),
            ]
        );
        assert_eq!(parsed("x=a%3Db%26c"), [("x".into(), "a=b&c".into())]);
        assert_eq!(parsed("nul=a%00b"), [("nul".into(), "a\0b".into())]);
        assert_eq!(parsed("odd=%zz%4"), [("odd".into(), "%zz%4".into())]);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_not_replaced() {
        for body in ["v=%FF", "v=%C3", "%FE=x", "v=%ED%A0%80"] {
            assert!(
                matches!(parse_form(body.as_bytes()), Err(Problem::BadBody)),
                "{body}"
            );
        }
        assert!(parse_form(b"v=\xff").is_err());
    }
}
