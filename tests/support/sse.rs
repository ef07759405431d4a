//! Server-Sent Events read the way a browser's `EventSource` reads them (the WHATWG
//! parsing rules): CR, LF and CR LF all end a line, one space after the colon is
//! dropped, `data` lines join with LF. A test that reads events like this sees what a
//! real client would, forged fields included.

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

pub fn parse(stream: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let (mut event, mut data, mut id) = (String::new(), String::new(), None::<String>);
    let normalized = stream.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        if line.is_empty() {
            if !data.is_empty() {
                data.pop();
                events.push(Event {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event.clone()
                    },
                    data: std::mem::take(&mut data),
                    id: id.clone(),
                });
            }
            event.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value.to_string(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" => id = Some(value.to_string()),
            _ => {}
        }
    }
    events
}
