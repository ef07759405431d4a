//! What can go wrong with a request, and the response for each: a friendly HTML page for
//! browsers, JSON under `/api/`, never a panic or a stack trace. warp's own rejections
//! (unknown path, wrong method, body too large, ...) are mapped here too.

use askama::Template;
use http::StatusCode;
use http::header::RETRY_AFTER;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::respond::{self, Page};

#[derive(Debug)]
pub enum Problem {
    /// Not signed in: pages go to the login form, then back to `next`.
    SignIn {
        next: String,
    },
    /// `Origin` or `Sec-Fetch-Site` says another site sent this POST.
    CrossSite,
    /// The CSRF token is missing or wrong.
    BadCsrf,
    /// The login form's cookie is gone (expired, or cookies are off).
    LoginExpired,
    NotFound,
    /// Too many sign-ins are waiting already.
    Busy,
    /// The body is larger than this route takes (or has too many parts).
    TooLarge,
    TooManyParts,
    /// A POST body that is neither urlencoded nor multipart.
    UnsupportedForm,
    /// A body that cannot be read (bad encoding, broken multipart).
    BadBody,
    /// A query string or header that cannot be read.
    BadRequest,
    /// A header ftw trusts came more than once (its name).
    RepeatedHeader(String),
    /// `Host` names a host ftw does not answer to (as sent, cut short).
    UnknownHost(String),
    /// A body without a declared length where one is needed.
    LengthRequired,
    /// A known path, but not with this method.
    MethodNotAllowed,
    /// The client paused too long while sending its body.
    SlowClient,
    /// The tool's run queue is full.
    QueueFull,
    /// The user has `--max-streams-per-user` live event streams open.
    TooManyStreams,
    /// The user has `max_runs_per_user` runs queued or running.
    UserBusy,
    /// The disk that holds ftw's state is full: 507.
    StorageFull(String),
    ShuttingDown,
    /// Something on the server failed; the message goes to the log, not the client.
    Internal(String),
    /// API: no valid session or bearer token.
    Unauthorized,
    /// API: a bearer token that is not one of `[auth.tokens]`.
    BadToken,
    /// Known, but not for this caller (/metrics from elsewhere).
    Forbidden,
    /// API: too many failed attempts from this address; retry after this long.
    Throttled(std::time::Duration),
    /// API: the body is not the JSON the route takes.
    BadJson,
    /// History filters that cannot be read: why.
    BadFilter(String),
    /// API: the arguments did not pass their checks; messages by field.
    Invalid(crate::form::Errors),
    /// API: larger than the tool takes; messages by field (or for the whole body).
    TooLargeFields(crate::form::Errors),
}

impl warp::reject::Reject for Problem {}

impl Problem {
    /// A failed write of `what`: 507 when the disk (or the user's quota) is full, which
    /// the client should hear about, else a 500 whose reason goes to the log.
    pub fn storage(what: &str, e: &std::io::Error) -> Problem {
        let reason = crate::manifest::io_reason(e);
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => {
                Problem::StorageFull(format!("cannot store {what}: {reason}"))
            }
            _ => Problem::Internal(format!("cannot store {what}: {reason}")),
        }
    }

    /// A failed database write of `what`: 507 when the disk is full, else 500.
    pub fn stored(what: &str, e: &crate::store::StoreError) -> Problem {
        if e.full {
            Problem::StorageFull(format!("cannot store {what}: {e}"))
        } else {
            Problem::Internal(format!("cannot store {what}: {e}"))
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    page: Page<'a>,
    heading: &'a str,
    message: &'a str,
    link: String,
    link_text: &'a str,
}

/// The response for a rejection, for browsers.
pub fn page(state: &State, rejection: &Rejection) -> Response {
    let (status, heading, message) = match classify(rejection) {
        Classified::Redirect(location) => return respond::see_other(&location),
        Classified::Status(status, heading, message) => (status, heading, message),
    };
    let manifest = state.manifest();
    let home = state.base.clone();
    let page = ErrorPage {
        page: Page::new(state, &manifest.title, heading, None),
        heading,
        message: &message,
        link_text: if status == StatusCode::FORBIDDEN {
            "Reload and try again"
        } else {
            "Go to the start page"
        },
        link: home,
    };
    let mut r = respond::html(status, &page);
    let retry = match status {
        StatusCode::SERVICE_UNAVAILABLE => Some("1"),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::INSUFFICIENT_STORAGE => Some("5"),
        _ => None,
    };
    if let Some(seconds) = retry {
        r.headers_mut()
            .insert(RETRY_AFTER, http::HeaderValue::from_static(seconds));
    }
    r
}

/// The response for a rejection under `/api/`: JSON `{"error": ...}` with the status,
/// `fields` for invalid arguments, `Retry-After` when throttled.
pub fn api(rejection: &Rejection) -> Response {
    let (status, message) = match classify(rejection) {
        Classified::Redirect(_) => (
            StatusCode::UNAUTHORIZED,
            "sign in, or send Authorization: Bearer TOKEN".to_string(),
        ),
        Classified::Status(status, _, message) => (status, message),
    };
    let mut body = serde_json::json!({ "error": message });
    if let Some(Problem::Invalid(errors) | Problem::TooLargeFields(errors)) =
        rejection.find::<Problem>()
    {
        // Problems with the request as a whole (undeclared fields) go under "_form".
        let fields: serde_json::Map<String, serde_json::Value> = errors
            .iter()
            .map(|(k, v)| {
                let key = if k.is_empty() { "_form" } else { k.as_str() };
                (key.to_string(), serde_json::json!(v))
            })
            .collect();
        body["fields"] = serde_json::Value::Object(fields);
    }
    let mut r = respond::json(status, &body);
    match rejection.find::<Problem>() {
        Some(Problem::Throttled(wait)) => {
            r.headers_mut()
                .insert(RETRY_AFTER, http::HeaderValue::from(wait.as_secs().max(1)));
        }
        Some(Problem::QueueFull | Problem::UserBusy | Problem::TooManyStreams) => {
            r.headers_mut()
                .insert(RETRY_AFTER, http::HeaderValue::from_static("5"));
        }
        _ => {}
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert("www-authenticate", http::HeaderValue::from_static("Bearer"));
    }
    r
}

enum Classified {
    Redirect(String),
    Status(StatusCode, &'static str, String),
}

fn classify(rejection: &Rejection) -> Classified {
    if let Some(problem) = rejection.find::<Problem>() {
        return problem.classified();
    }
    // warp's own rejections, in ftw's words.
    let problem = if rejection.is_not_found() {
        Problem::NotFound
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        Problem::TooLarge
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        Problem::LengthRequired
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Problem::MethodNotAllowed
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        Problem::UnsupportedForm
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some()
        || rejection.find::<warp::reject::InvalidHeader>().is_some()
        || rejection.find::<warp::reject::MissingHeader>().is_some()
        || rejection
            .find::<warp::body::BodyDeserializeError>()
            .is_some()
    {
        Problem::BadRequest
    } else {
        Problem::Internal(format!("unhandled rejection: {rejection:?}"))
    };
    problem.classified()
}

impl Problem {
    /// The sentence for the person who sent it (or the log, for a schedule's run).
    pub fn sentence(&self) -> String {
        match self.classified() {
            Classified::Redirect(to) => format!("sign-in needed ({to})"),
            Classified::Status(_, _, message) => message,
        }
    }

    /// The status, the page heading and the sentence for the person who sent it.
    fn classified(&self) -> Classified {
        use StatusCode as S;
        let (status, heading, message) = match self {
            Problem::SignIn { next } => return Classified::Redirect(next.clone()),
            Problem::BadFilter(why) => {
                return Classified::Status(
                    S::BAD_REQUEST,
                    "Bad filter",
                    format!("The history cannot be filtered that way: {why}."),
                );
            }
            Problem::Unauthorized => return Classified::Redirect(String::new()),
            Problem::RepeatedHeader(name) => {
                return Classified::Status(
                    S::BAD_REQUEST,
                    "Bad request",
                    format!(
                        "The request has more than one {name} header; ftw does not guess which one counts. Send it once."
                    ),
                );
            }
            Problem::UnknownHost(host) => {
                return Classified::Status(
                    S::MISDIRECTED_REQUEST,
                    "Unknown host",
                    format!(
                        "This ftw does not answer to the host \"{host}\". If that is its name (behind a proxy, say), add it to [server] allowed_hosts."
                    ),
                );
            }
            Problem::CrossSite => (
                S::FORBIDDEN,
                "Cross-site request refused",
                "This request came from another site, so ftw did not act on it.",
            ),
            Problem::BadCsrf => (
                S::FORBIDDEN,
                "Form expired",
                "This form is no longer valid (it belongs to an older sign-in). Reload the page and try again.",
            ),
            Problem::LoginExpired => (
                S::FORBIDDEN,
                "Sign-in form expired",
                "Your browser did not send the sign-in form's cookie. Reload the sign-in page and try again; cookies must be enabled.",
            ),
            Problem::NotFound => (
                S::NOT_FOUND,
                "Not found",
                "There is nothing here, or you may not see it.",
            ),
            Problem::Busy => (
                S::SERVICE_UNAVAILABLE,
                "Busy",
                "Too many sign-ins are in progress. Try again in a moment.",
            ),
            Problem::TooLarge | Problem::TooLargeFields(_) => (
                S::PAYLOAD_TOO_LARGE,
                "Too large",
                "The request body is larger than ftw accepts.",
            ),
            Problem::TooManyParts => (
                S::PAYLOAD_TOO_LARGE,
                "Too many fields",
                "The form sent more fields than this tool has.",
            ),
            Problem::UnsupportedForm => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported form",
                "The request body is not in a form ftw reads.",
            ),
            Problem::BadBody => (
                S::BAD_REQUEST,
                "Bad request",
                "The request body could not be read: a broken form, or text that is not UTF-8.",
            ),
            Problem::BadRequest => (
                S::BAD_REQUEST,
                "Bad request",
                "The request could not be read: a malformed query string or header.",
            ),
            Problem::LengthRequired => (
                S::LENGTH_REQUIRED,
                "Length required",
                "The request must say how long its body is.",
            ),
            Problem::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "This address does not take that kind of request.",
            ),
            Problem::SlowClient => (
                S::REQUEST_TIMEOUT,
                "Too slow",
                "The request body stopped arriving, or arrived slower than 1 KB a second, so ftw gave up on it.",
            ),
            Problem::TooManyStreams => (
                S::TOO_MANY_REQUESTS,
                "Too many live pages",
                "You have as many live run pages and event streams open as one person may (--max-streams-per-user). Close some, then reload this one.",
            ),
            Problem::QueueFull => (
                S::TOO_MANY_REQUESTS,
                "Too many runs",
                "Too many runs are waiting to start. Try again in a moment.",
            ),
            Problem::UserBusy => (
                S::TOO_MANY_REQUESTS,
                "Too many runs of yours",
                "You have as many runs queued or running as one person may (max_runs_per_user). Start this one when one of them has finished.",
            ),
            Problem::StorageFull(why) => {
                tracing::error!("out of space: {why}");
                (
                    S::INSUFFICIENT_STORAGE,
                    "Disk full",
                    "The disk that holds ftw's state is full, so this could not be stored. Nothing was run. ftw keeps serving; an administrator must free space (or lower keep_runs / max_state_size).",
                )
            }
            Problem::ShuttingDown => (
                S::SERVICE_UNAVAILABLE,
                "Shutting down",
                "ftw is shutting down and starts no new runs.",
            ),
            Problem::Internal(why) => {
                tracing::error!("internal error: {why}");
                (
                    S::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "ftw could not answer this request.",
                )
            }
            Problem::BadToken => (
                S::UNAUTHORIZED,
                "Token refused",
                "The API token was refused: it is not one of the manifest's [auth.tokens] (it may have been removed). Make a new one with `ftw gen-token`.",
            ),
            Problem::Forbidden => (
                S::FORBIDDEN,
                "Forbidden",
                "This address is not allowed to read this.",
            ),
            Problem::Throttled(_) => (
                S::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many failed attempts from this address; try again later.",
            ),
            Problem::BadJson => (
                S::BAD_REQUEST,
                "Bad request",
                "The body must be JSON: {\"args\": {\"name\": value}}.",
            ),
            Problem::Invalid(_) => (
                S::UNPROCESSABLE_ENTITY,
                "Invalid arguments",
                "Some arguments did not pass their checks.",
            ),
        };
        Classified::Status(status, heading, message.to_string())
    }
}
