//! The traffic `loket load` sends: conversations from `loket-workload`
//! (new ones and follow-ups, Dutch and English, each connection in an id
//! range of its own), with the built-in texts or a file's, encoded into a
//! pool of batches before the clock starts.

use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use loket_router::{ConversationId, CustomerId, Language, Message, SkillId};
use loket_wire::{Id, MessageBatch, WireMessage, channel, encode_batch, language};
use loket_workload::{TEXTS, Traffic};
use serde::Serialize;

use super::{IdStyle, Protocol};

/// Share of messages (percent) that open a new conversation: a
/// conversation gets about ten customer messages, as chats do.
pub const NEW_SHARE: usize = 10;
/// Open conversations per connection that follow-ups go to, unless
/// `--conversations` says otherwise.
pub const OPEN_PER_CONNECTION: usize = 1_000;
/// Distinct customers per connection.
const CUSTOMERS: u64 = 50_000;
/// Longest text taken from a file: `loketd`'s default `max_text_bytes`.
pub const MAX_TEXT_BYTES: usize = 4_096;

/// What customers write.
#[derive(Debug, Clone, PartialEq)]
pub enum Texts {
    /// `loket-workload`'s few dozen Dutch and English shop messages, each
    /// sent with its language.
    BuiltIn,
    /// A file's messages, drawn at random; the server detects their
    /// language.
    File(Vec<String>),
}

impl Texts {
    /// Reads `path`: one message per line, or, for a name ending in
    /// `.csv`, the `text` column of a CSV file with a header (as the
    /// CLINC150 and BANKING77 files and Loket's own corpora are). Empty
    /// lines are skipped; a text longer than [`MAX_TEXT_BYTES`], a line
    /// that is not UTF-8, or a file with no message is an error that names
    /// the file and line.
    pub fn read(path: &Path) -> anyhow::Result<Texts> {
        let name = path.display();
        let bytes = std::fs::read(path).with_context(|| format!("cannot open {name}"))?;
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let texts = if is_csv {
            csv_texts(&bytes, &name.to_string())?
        } else {
            lines(&bytes, &name.to_string())?
        };
        if texts.is_empty() {
            bail!("{name} holds no message");
        }
        Ok(Texts::File(texts))
    }

    /// `built-in`, or the number of texts read.
    pub fn describe(&self) -> String {
        match self {
            Texts::BuiltIn => "built-in".to_owned(),
            Texts::File(texts) => format!("{} from a file", texts.len()),
        }
    }
}

fn checked(text: &str, name: &str, line: usize) -> anyhow::Result<Option<String>> {
    let text = text.trim();
    if text.len() > MAX_TEXT_BYTES {
        bail!("{name} line {line}: {} bytes; loketd takes at most {MAX_TEXT_BYTES}", text.len());
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn lines(bytes: &[u8], name: &str) -> anyhow::Result<Vec<String>> {
    let mut texts = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(line)
            .map_err(|e| anyhow::anyhow!("{name} line {}: not UTF-8 ({e})", index + 1))?;
        texts.extend(checked(line, name, index + 1)?);
    }
    Ok(texts)
}

fn csv_texts(bytes: &[u8], name: &str) -> anyhow::Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader.headers().with_context(|| format!("{name}: reading the header"))?;
    let Some(column) = header.iter().position(|h| h.trim() == "text") else {
        let header: Vec<&str> = header.iter().collect();
        bail!("{name}: no `text` column in the header ({})", header.join(","));
    };
    let mut texts = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| name.to_owned())?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        if let Some(text) = record.get(column) {
            texts.extend(checked(text, name, line)?);
        }
    }
    Ok(texts)
}

/// How one run's traffic is made.
#[derive(Debug, Clone, Copy)]
pub struct TrafficSpec<'a> {
    /// How batches are encoded.
    pub protocol: Protocol,
    /// Integer or string ids.
    pub ids: IdStyle,
    /// What customers write.
    pub texts: &'a Texts,
    /// Open conversations per connection that follow-ups go to.
    pub open_per_connection: usize,
    /// Random seed.
    pub seed: u64,
}

/// Generates one connection's traffic.
struct Generator<'a> {
    traffic: Traffic,
    /// Recent conversations' opening messages, a ring.
    open: Vec<Message>,
    oldest: usize,
    capacity: usize,
    /// Indexes into `TEXTS` by language: Dutch, English.
    built_in: [Vec<usize>; 2],
    texts: &'a Texts,
    base: u64,
    made: u64,
    ids: IdStyle,
}

impl<'a> Generator<'a> {
    fn new(connection: usize, spec: &TrafficSpec<'a>) -> Generator<'a> {
        // Connection c owns ids [(c + 1) << 40, (c + 2) << 40).
        let base = (connection as u64 + 1) << 40;
        let seed = spec.seed ^ (connection as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let by = |language: Language| {
            (0..TEXTS.len()).filter(|&i| TEXTS[i].0 == language).collect::<Vec<_>>()
        };
        let capacity = spec.open_per_connection.max(1);
        Generator {
            traffic: Traffic::new(vec![SkillId(0)], base, CUSTOMERS, seed),
            open: Vec::with_capacity(capacity.min(1 << 20)),
            oldest: 0,
            capacity,
            built_in: [by(Language::NL), by(Language::EN)],
            texts: spec.texts,
            base,
            made: 0,
            ids: spec.ids,
        }
    }

    fn next(&mut self) -> WireMessage {
        self.made += 1;
        let (message, text) = if self.open.is_empty() || self.traffic.pick(100) < NEW_SHARE {
            let (message, text) = self.traffic.new_conversation();
            if self.open.len() < self.capacity {
                self.open.push(message.clone());
            } else {
                self.open[self.oldest] = message.clone();
                self.oldest = (self.oldest + 1) % self.capacity;
            }
            (message, text)
        } else {
            let index = self.traffic.pick(self.open.len());
            let message = self.traffic.follow_up(&self.open[index]);
            let texts = &self.built_in[usize::from(message.language == Language::EN)];
            let text = texts.get(self.traffic.pick(texts.len())).copied().unwrap_or(0);
            (message, text)
        };
        let ConversationId(conversation_id) = message.conversation;
        let CustomerId(customer) = message.customer;
        let (language, text) = match self.texts {
            // One message in five leaves the language to the server.
            Texts::BuiltIn if self.made.is_multiple_of(5) => (language::DETECT, TEXTS[text].1),
            Texts::BuiltIn if message.language == Language::EN => (language::EN, TEXTS[text].1),
            Texts::BuiltIn => (language::NL, TEXTS[text].1),
            Texts::File(texts) => {
                (language::DETECT, texts[self.traffic.pick(texts.len())].as_str())
            }
        };
        let (conversation_id, customer_id) = match self.ids {
            IdStyle::Numeric => (Id::Number(conversation_id), Id::Number(self.base + customer)),
            IdStyle::Text => (uuid_like(conversation_id), phone_like(self.base + customer)),
        };
        WireMessage {
            conversation_id,
            customer_id,
            channel: message.channel.index() as u8,
            language,
            tier: message.tier,
            text: text.to_owned(),
            sent_at_us: 0,
            skills: Vec::new(),
        }
    }
}

/// A UUID-shaped string id (36 bytes), one per number.
fn uuid_like(n: u64) -> Id {
    let mixed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Id::Text(format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        mixed >> 32,
        (mixed >> 16) & 0xFFFF,
        mixed & 0xFFF,
        (n >> 48) & 0xFFF,
        n & 0xFFFF_FFFF_FFFF
    ))
}

/// A phone-number-shaped string id, one per number.
fn phone_like(n: u64) -> Id {
    Id::Text(format!("+31{n:015}"))
}

/// The JSON body of `POST /v1/messages/batch`.
#[derive(Serialize)]
struct HttpBatch<'a> {
    messages: Vec<HttpMessage<'a>>,
}

#[derive(Serialize)]
struct HttpMessage<'a> {
    conversation_id: &'a Id,
    customer_id: &'a Id,
    channel: &'static str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'static str>,
    tier: u8,
}

/// `count` encoded batches of `batch` messages for connection `connection`:
/// binary frames, or JSON request bodies.
pub fn build_pool(
    spec: &TrafficSpec<'_>,
    connection: usize,
    count: usize,
    batch: usize,
) -> anyhow::Result<Vec<Bytes>> {
    let mut generator = Generator::new(connection, spec);
    (0..count)
        .map(|index| {
            let messages: Vec<WireMessage> = (0..batch).map(|_| generator.next()).collect();
            let bytes = match spec.protocol {
                Protocol::Binary => {
                    let mut out = Vec::new();
                    let batch = MessageBatch { batch_id: index as u64 + 1, messages };
                    encode_batch(&batch, &mut out)?;
                    out
                }
                Protocol::Http => serde_json::to_vec(&HttpBatch {
                    messages: messages
                        .iter()
                        .map(|m| HttpMessage {
                            conversation_id: &m.conversation_id,
                            customer_id: &m.customer_id,
                            channel: channel::name(m.channel).unwrap_or("chat"),
                            text: &m.text,
                            language: language::code(m.language),
                            tier: m.tier,
                        })
                        .collect(),
                })?,
            };
            Ok(Bytes::from(bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Texts::BuiltIn;
    use loket_wire::{Frame, Limits};

    fn spec<'a>(protocol: Protocol, ids: IdStyle, texts: &'a Texts) -> TrafficSpec<'a> {
        TrafficSpec { protocol, ids, texts, open_per_connection: OPEN_PER_CONNECTION, seed: 1 }
    }

    fn decoded(pool: &[Bytes]) -> Vec<WireMessage> {
        let limits = Limits::default();
        let mut messages = Vec::new();
        for bytes in pool {
            let Some((Frame::Batch(batch), _)) = loket_wire::decode_frame(bytes, &limits).unwrap()
            else {
                panic!("a batch frame")
            };
            messages.extend(batch.archived().messages.iter().map(|m| WireMessage {
                conversation_id: m.conversation_id.to_id(),
                customer_id: m.customer_id.to_id(),
                channel: m.channel,
                language: m.language,
                tier: m.tier,
                text: m.text.as_str().to_owned(),
                sent_at_us: 0,
                skills: Vec::new(),
            }));
        }
        messages
    }

    #[test]
    fn pools_use_disjoint_ids_per_connection_and_valid_fields() {
        let a = build_pool(&spec(Protocol::Binary, IdStyle::Numeric, &BuiltIn), 0, 3, 50).unwrap();
        let b = build_pool(&spec(Protocol::Binary, IdStyle::Numeric, &BuiltIn), 1, 3, 50).unwrap();
        let limits = Limits::default();
        let ids = |pool: &[Bytes]| {
            let mut ids = std::collections::BTreeSet::new();
            for bytes in pool {
                let Some((Frame::Batch(batch), used)) =
                    loket_wire::decode_frame(bytes, &limits).unwrap()
                else {
                    panic!("a batch frame")
                };
                assert_eq!(used, bytes.len());
                assert_eq!(batch.message_count(), 50);
                ids.extend(batch.archived().messages.iter().map(|m| m.conversation_id.to_id()));
            }
            ids
        };
        let (ids_a, ids_b) = (ids(&a), ids(&b));
        assert!(ids_a.len() > 1 && ids_b.len() > 1);
        assert!(ids_a.is_disjoint(&ids_b));
        // Same seed, same traffic.
        assert_eq!(
            a,
            build_pool(&spec(Protocol::Binary, IdStyle::Numeric, &BuiltIn), 0, 3, 50).unwrap()
        );
        let text = build_pool(&spec(Protocol::Binary, IdStyle::Text, &BuiltIn), 0, 3, 50).unwrap();
        let text_ids = ids(&text);
        assert_eq!(text_ids.len(), ids_a.len(), "one string per number");
        assert!(text_ids.iter().all(|id| matches!(id, Id::Text(t) if t.len() == 36)));

        let http = build_pool(&spec(Protocol::Http, IdStyle::Numeric, &BuiltIn), 2, 1, 10).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&http[0]).unwrap();
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 10);
        for m in messages {
            assert!(channel::from_name(m["channel"].as_str().unwrap()).is_some());
            let id: u64 = m["conversation_id"].as_str().unwrap().parse().unwrap();
            assert!(id >= 3 << 40);
            assert!(!m["text"].as_str().unwrap().is_empty());
            assert!(m.get("language").is_none_or(|l| l == "nl" || l == "en"));
        }
    }

    fn file(name: &str, contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    #[test]
    fn texts_come_from_lines_or_a_csv_text_column() {
        let (_dir, path) =
            file("texts.txt", "heeft u de bananenboom?\r\n\n  where is my parcel  \n");
        assert_eq!(
            Texts::read(&path).unwrap(),
            Texts::File(vec!["heeft u de bananenboom?".into(), "where is my parcel".into()])
        );
        let (_dir, path) = file(
            "data.CSV",
            "label,text\nx,\"ik twijfel, welke maat?\"\ny,\"said \"\"hi\"\"\"\nz,\n",
        );
        assert_eq!(
            Texts::read(&path).unwrap(),
            Texts::File(vec!["ik twijfel, welke maat?".into(), "said \"hi\"".into()])
        );
    }

    #[test]
    fn unusable_text_files_are_clear_errors() {
        let missing = Texts::read(Path::new("/nonexistent/texts.txt")).unwrap_err();
        assert!(format!("{missing:#}").starts_with("cannot open /nonexistent/texts.txt"));
        let (_dir, path) = file("empty.txt", "\n  \n");
        assert!(Texts::read(&path).unwrap_err().to_string().ends_with("holds no message"));
        let (_dir, path) = file("data.csv", "utterance,label\nhoi,x\n");
        let error = Texts::read(&path).unwrap_err().to_string();
        assert!(error.contains("no `text` column in the header (utterance,label)"), "{error}");
        let long = format!("ok\n{}\n", "a".repeat(MAX_TEXT_BYTES + 1));
        let (_dir, path) = file("long.txt", &long);
        let error = Texts::read(&path).unwrap_err().to_string();
        assert!(error.contains("long.txt line 2: 4097 bytes"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.txt");
        std::fs::write(&path, b"ok\nbloemkool \xe9\n").unwrap();
        let error = Texts::read(&path).unwrap_err().to_string();
        assert!(error.contains("latin1.txt line 2: not UTF-8"), "{error}");
    }

    #[test]
    fn file_texts_are_all_drawn_and_leave_the_language_to_the_server() {
        let texts = Texts::File((0..20).map(|i| format!("bericht nummer {i}")).collect());
        let messages = decoded(
            &build_pool(&spec(Protocol::Binary, IdStyle::Numeric, &texts), 0, 20, 50).unwrap(),
        );
        let Texts::File(lines) = &texts else { unreachable!() };
        let seen: std::collections::BTreeSet<&str> =
            messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(seen.len(), lines.len(), "every text is drawn in 1,000 messages");
        assert!(seen.iter().all(|t| lines.iter().any(|l| l == t)));
        assert!(messages.iter().all(|m| m.language == language::DETECT));
    }

    #[test]
    fn conversations_bound_the_open_set_and_most_messages_follow_up() {
        let narrow = TrafficSpec {
            open_per_connection: 5,
            ..spec(Protocol::Binary, IdStyle::Numeric, &BuiltIn)
        };
        let wide = TrafficSpec { open_per_connection: 5_000, ..narrow };
        let count = |spec: &TrafficSpec<'_>| {
            let messages = decoded(&build_pool(spec, 0, 20, 100).unwrap());
            let mut conversations = std::collections::BTreeMap::new();
            for m in &messages {
                *conversations.entry(m.conversation_id.clone()).or_insert(0) += 1;
            }
            (messages.len(), conversations.len())
        };
        let (messages, narrow_conversations) = count(&narrow);
        let (_, wide_conversations) = count(&wide);
        // About one message in ten opens a conversation, either way.
        for conversations in [narrow_conversations, wide_conversations] {
            assert!((100..=300).contains(&conversations), "{conversations} of {messages}");
        }
        // With 5 open, follow-ups crowd onto the few most recent.
        let messages = decoded(&build_pool(&narrow, 0, 20, 100).unwrap());
        let recent: std::collections::BTreeSet<_> =
            messages[messages.len() - 30..].iter().map(|m| m.conversation_id.clone()).collect();
        assert!(recent.len() <= 5 + 6, "{} conversations in the last 30 messages", recent.len());
    }
}
