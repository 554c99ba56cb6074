//! The operations page at `/`, in a real browser: the daemon runs in-process
//! on loopback with demo traffic, headless Chromium loads the page, signs in
//! with the tenant's token, and the test reads the page's DOM over the
//! Chrome DevTools Protocol and compares it with what `/v1/stats`,
//! `/v1/queues` and `/v1/agents` answer; then more traffic flows and the
//! same page, not reloaded, must catch up through its event stream and its
//! refreshes.
//!
//! The browser is driven through `--remote-debugging-pipe` by
//! `loket-browser` (no WebSocket, no CDP crate to compile). Chromium is the
//! Debian package `chromium` (`.ci/run` installs it); without it the test
//! fails and says so. `CHROMIUM=/path/to/chrome` picks another binary.
//!
//! The test also takes a 1280x800 screenshot of the page: to
//! `$CARGO_TARGET_TMPDIR/console.png`, or to the file
//! `LOKETD_CONSOLE_SCREENSHOT` names (`docs/images/console.png` is made so).

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loket_browser::{Browser, WAIT};
use loketd::Spawned;
use serde_json::{Value, json};
use support::{TOKEN, config, http};

/// What the page shows, read from its DOM.
const PAGE: &str = r#"(() => {
  const text = (id) => document.getElementById(id).textContent;
  const number = (s) => Number(String(s).replace(/[^0-9]/g, ''));
  const rows = (selector) => [...document.querySelectorAll(selector)];
  const first = document.querySelector('#events tbody tr td');
  return {
    status: document.getElementById('status').dataset.state,
    signed_in: !document.getElementById('console').hidden,
    tenant: text('tenant'),
    agents: number(text('stat-agents')),
    conversations: number(text('stat-conversations')),
    queued: number(text('stat-queued')),
    last_seq: number(text('stat-seq')),
    queues: rows('#queues tbody tr').map((r) => ({
      channel: r.cells[0].textContent, language: r.cells[1].textContent,
      depth: number(r.cells[2].textContent)})),
    presence: Object.fromEntries(rows('#presence-chips .chip').map((c) =>
      [c.dataset.presence, number(c.querySelector('strong').textContent)])),
    agent_rows: rows('#agents tbody tr').length,
    agent_range: text('agents-range'),
    event_rows: rows('#events tbody tr').length,
    top_seq: first ? number(first.textContent) : 0,
    whys: rows('#events .why').length,
    marker: window.consoleTestMarker === 1,
  };
})()"#;

/// The status line, headers and body of one plain request.
fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: loketd\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_ascii_lowercase(), body.to_owned())
}

fn message(conversation: &str, customer: &str, channel: &str, text: &str) -> Value {
    json!({"conversation_id": conversation, "customer_id": customer, "channel": channel, "text": text})
}

/// Demo traffic: more voice calls than people can take (a lane queues and
/// says why), some asking for a person; product and order questions on
/// chat and WhatsApp that the bots take; English returns by email and an
/// English voice call that needs a returns expert who is offline.
fn first_wave() -> Vec<Value> {
    let mut messages = Vec::new();
    for i in 0..64 {
        let text = if i % 3 == 0 {
            "kan ik een medewerker spreken?"
        } else {
            "ik heb een vraag over mijn bestelling"
        };
        messages.push(message(&format!("voice-{i}"), &format!("+316100{i:05}"), "voice", text));
    }
    for i in 0..2 {
        let mut m = message(
            &format!("voice-en-{i}"),
            &format!("e{i}"),
            "voice",
            "I need to return a lawnmower",
        );
        m["language"] = json!("en");
        m["skills"] = json!({"returns": 10});
        messages.push(m);
    }
    let texts = [
        ("chat", "hebben jullie nog olijfbomen op voorraad?"),
        ("whatsapp", "wat kost de bananenboom?"),
        ("chat", "ik heb een klacht over de levering, dit is de derde keer"),
        ("whatsapp", "ik wil mijn bestelling retourneren"),
        ("chat", "where is my order?"),
    ];
    for i in 0..40 {
        let (channel, text) = texts[i % texts.len()];
        messages.push(message(&format!("{channel}-{i}"), &format!("k{i}"), channel, text));
    }
    for i in 0..4 {
        let mut m = message(
            &format!("mail-{i}"),
            &format!("m{i}"),
            "email",
            "I want to return the hedge trimmer",
        );
        m["language"] = json!("en");
        m["skills"] = json!({"returns": 10});
        messages.push(m);
    }
    messages.push(message("<b id=bold>x</b>", "k-html", "chat", "hallo"));
    messages
}

fn post_batch(rt: &tokio::runtime::Runtime, addr: std::net::SocketAddr, messages: Vec<Value>) {
    let body = json!({"messages": messages}).to_string();
    let (status, answer) =
        rt.block_on(http(addr, "POST", "/v1/messages/batch", Some(TOKEN), Some(&body)));
    assert_eq!(status, 200, "{answer}");
}

/// Counts of agents by presence, over every page of `/v1/agents`.
fn presence_counts(rt: &tokio::runtime::Runtime, addr: std::net::SocketAddr) -> Value {
    let mut counts = json!({"available": 0, "away": 0, "not_responding": 0, "offline": 0});
    let mut offset = 0;
    loop {
        let path = format!("/v1/agents?limit=1000&offset={offset}");
        let (status, page) = rt.block_on(http(addr, "GET", &path, Some(TOKEN), None));
        assert_eq!(status, 200, "{page}");
        for agent in page["agents"].as_array().unwrap() {
            let presence = agent["presence"].as_str().unwrap();
            counts[presence] = json!(counts[presence].as_u64().unwrap() + 1);
        }
        match page["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => return counts,
        }
    }
}

/// Waits until the page's tiles and queue table show what the API answers.
fn wait_until_page_matches_api(
    browser: &mut Browser,
    rt: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, stats) = rt.block_on(http(addr, "GET", "/v1/stats", Some(TOKEN), None));
        let (_, queues) = rt.block_on(http(addr, "GET", "/v1/queues", Some(TOKEN), None));
        let expected_queues: Vec<Value> = queues["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| json!({"channel": q["channel"], "language": q["language"], "depth": q["depth"]}))
            .collect();
        let page = browser.eval(PAGE);
        let matches = page["agents"] == stats["router"]["agents"]
            && page["conversations"] == stats["router"]["conversations"]
            && page["queued"] == stats["router"]["queued"]
            && page["last_seq"] == stats["last_seq"]
            && page["top_seq"] == stats["last_seq"]
            && page["queues"] == json!(expected_queues);
        if matches {
            return page;
        }
        if Instant::now() > deadline {
            panic!(
                "the page never matched the API within {WAIT:?}:\npage {page:#}\nstats {stats}\nqueues {queues}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_operations_page_shows_the_tenant_live_in_a_real_browser() {
    let started = Instant::now();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = rt.block_on(Spawned::start(config(dir.path()))).unwrap();
    let addr = daemon.http;

    // The page and its files need no token and carry a strict policy.
    let (head, body) = get(addr, "/");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self';"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(body.contains("<script src=\"/console/console.js\" defer></script>"), "{body}");
    assert!(!body.contains("<script>") && !body.contains(" style="), "nothing inline: {body}");
    let (head, script) = get(addr, "/console/console.js");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(!script.contains("innerHTML"), "the script never writes HTML");
    let (head, _) = get(addr, "/console/console.css");
    assert!(head.contains("content-type: text/css"), "{head}");

    // Some agents step away; one has an id that is also markup.
    for (agent, presence) in
        [("2", "away"), ("3", "away"), ("4", "away"), ("5", "offline"), ("6", "offline")]
    {
        let body = json!({"presence": presence}).to_string();
        let path = format!("/v1/agents/{agent}");
        let (status, answer) = rt.block_on(http(addr, "PATCH", &path, Some(TOKEN), Some(&body)));
        assert_eq!(status, 200, "{answer}");
    }
    let hostile = json!({"id": "<img src=x id=pwned>", "team": "<i>night</i>",
        "skills": {"service": 2}, "languages": ["nl"], "presence": "away"});
    let (status, answer) =
        rt.block_on(http(addr, "POST", "/v1/agents", Some(TOKEN), Some(&hostile.to_string())));
    assert_eq!(status, 200, "{answer}");
    post_batch(&rt, addr, first_wave());

    let mut browser = Browser::launch();
    browser.navigate(&format!("http://{addr}/"));
    let login = browser.eval(PAGE);
    assert_eq!(login["signed_in"], false, "{login:#}");

    // A wrong token is refused and the form says so.
    browser.eval(
        "document.getElementById('token').value = 'not-a-token';\
         document.getElementById('login-form').requestSubmit(); true",
    );
    browser.wait_for(
        "the refusal of a wrong token",
        "document.getElementById('login-error').textContent",
        |v| v.as_str().is_some_and(|s| s.contains("refused")),
    );

    browser.eval(&format!(
        "document.getElementById('token').value = '{TOKEN}';\
         document.getElementById('login-form').requestSubmit(); window.consoleTestMarker = 1; true"
    ));
    let page = wait_until_page_matches_api(&mut browser, &rt, addr);
    assert_eq!(page["tenant"], "demo");
    assert_eq!(page["status"], "live", "{page:#}");
    assert!(page["queues"].as_array().unwrap().iter().any(|q| q["channel"] == "voice"), "{page:#}");
    assert!(page["whys"].as_u64().unwrap() > 0, "queued conversations say why: {page:#}");
    let expected = presence_counts(&rt, addr);
    let page = browser.wait_for("agents by presence", PAGE, |page| page["presence"] == expected);
    assert_eq!(page["presence"]["away"], 4, "{page:#}");
    assert_eq!(page["agent_rows"], 25, "one page of agents: {page:#}");
    assert_eq!(page["agent_range"], "1–25 of 101");

    // Platform strings are text, never markup.
    browser.set_field("agent-search", "<img", "input");
    let found = browser.eval(
        "[...document.querySelectorAll('#agents tbody tr')].map((r) => r.cells[0].textContent + '|' + r.cells[1].textContent)",
    );
    assert_eq!(found, json!(["<img src=x id=pwned>|<i>night</i>"]));
    let markup = browser.eval(
        "[document.getElementById('pwned'), document.getElementById('bold'), document.querySelector('#agents i')].every((n) => n === null)\
         && [...document.querySelectorAll('#events td')].some((td) => td.textContent === '<b id=bold>x</b>')",
    );
    assert_eq!(markup, true, "ids are shown as text");
    browser.set_field("agent-search", "", "input");
    let path = "/v1/agents/%3Cimg%20src%3Dx%20id%3Dpwned%3E";
    let (status, answer) = rt.block_on(http(addr, "DELETE", path, Some(TOKEN), None));
    assert_eq!(status, 200, "{answer}");

    // More traffic: the same page (no reload) follows, and the event list
    // stays capped.
    let before = browser.eval(PAGE);
    let mut messages = Vec::new();
    // New chats (some asking for a person), follow-ups in open ones, and
    // a voice call now and then that can only wait.
    for i in 0..200 {
        let text = match i % 4 {
            0 => "mag ik een medewerker spreken?",
            1 => "heeft u nog lavendel op voorraad?",
            _ => "wat kost een olijfboom van twee meter?",
        };
        messages.push(message(&format!("chat-live-{i}"), &format!("live{i}"), "chat", text));
        if i >= 50 && i % 2 == 0 {
            let earlier = i - 50;
            let (conversation, customer) =
                (format!("chat-live-{earlier}"), format!("live{earlier}"));
            messages.push(message(
                &conversation,
                &customer,
                "chat",
                "dank je, en is hij winterhard?",
            ));
        }
        if i % 10 == 0 {
            let text = "ik heb een vraag over mijn bestelling";
            messages.push(message(&format!("voice-live-{i}"), &format!("vl{i}"), "voice", text));
        }
    }
    post_batch(&rt, addr, messages);
    let page = wait_until_page_matches_api(&mut browser, &rt, addr);
    assert!(page["marker"].as_bool().unwrap(), "the page was not reloaded");
    assert!(
        page["last_seq"].as_u64().unwrap() >= before["last_seq"].as_u64().unwrap() + 250,
        "{before:#}\n{page:#}"
    );
    assert_eq!(page["event_rows"], 200, "the list keeps the newest 200 rows: {page:#}");
    let rate = browser.eval("document.getElementById('stat-rate').textContent");
    assert!(rate.as_str().is_some_and(|r| !r.starts_with("0 ")), "live events counted: {rate}");

    // The filter shows only waiting conversations.
    browser.set_field("event-filter", "waiting", "change");
    let types = browser.eval(
        "[...new Set([...document.querySelectorAll('#events tbody tr .type')].map((t) => t.textContent))]",
    );
    assert_eq!(types, json!(["queued"]));
    browser.set_field("event-filter", "", "change");

    let tokens_in_urls = browser.eval(
        "performance.getEntriesByType('resource').filter((e) => e.name.includes('token')).length",
    );
    assert_eq!(tokens_in_urls, 0, "the token never goes into a URL");

    let expected = presence_counts(&rt, addr);
    browser.wait_for("agents by presence", PAGE, |page| page["presence"] == expected);
    // The screenshot shows the page at rest: the new rows' highlight faded.
    let highlights = "document.getAnimations().filter((a) => a.animationName === 'fresh').length";
    browser.wait_for("the new rows' highlight to fade", highlights, |running| running == 0);
    let png = browser.screenshot();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let size = (u32::from_be_bytes(png[16..20].try_into().unwrap()), {
        u32::from_be_bytes(png[20..24].try_into().unwrap())
    });
    assert_eq!(size, (1280, 800));
    let target = std::env::var_os("LOKETD_CONSOLE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png"));
    std::fs::write(&target, &png).unwrap();

    // The daemon restarts on the same address: the page reconnects and
    // resumes after the last event it saw, missing and repeating nothing.
    rt.block_on(daemon.shutdown()).unwrap();
    let state = "document.getElementById('status').dataset.state";
    browser.wait_for("the page to see the daemon go", state, |v| v == "down");
    let mut again = config(dir.path());
    again.listen = addr;
    let daemon = rt.block_on(Spawned::start(again)).unwrap();
    let after = (0..30).map(|i| message(&format!("after-{i}"), &format!("a{i}"), "chat", "hallo"));
    post_batch(&rt, addr, after.collect());
    let page = wait_until_page_matches_api(&mut browser, &rt, addr);
    assert_eq!(page["status"], "live", "{page:#}");
    let seqs = browser.eval(
        "[...document.querySelectorAll('#events tbody td.seq')].map((td) => Number(td.textContent.replace(/[^0-9]/g, '')))",
    );
    let seqs: Vec<u64> = seqs.as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    assert_eq!(seqs.len(), 200);
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "every event once, in order: {seqs:?}");

    // Sign out forgets the token.
    browser.eval("document.getElementById('signout').click(); true");
    let stored = browser.eval("sessionStorage.getItem('loket.token')");
    assert_eq!(stored, Value::Null);

    assert!(browser.errors().is_empty(), "the page reported errors: {:#?}", browser.errors());
    drop(browser);
    rt.block_on(daemon.shutdown()).unwrap();
    eprintln!("browser test took {:?}", started.elapsed());
}

#[test]
fn ten_thousand_agents_are_counted_and_paged_not_drawn() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let presences = ["available", "available", "available", "away", "offline", "not_responding"];
    let mut lines = String::new();
    for i in 0..10_000 {
        let agent = json!({"id": format!("agent-{i}"), "skills": {"service": 1 + i % 10},
            "languages": ["nl"], "presence": presences[i % presences.len()],
            "team": format!("team-{:02}", i % 12)});
        lines.push_str(&format!("{agent}\n"));
    }
    let agents = dir.path().join("agents.jsonl");
    std::fs::write(&agents, lines).unwrap();
    let mut config = config(&dir.path().join("data"));
    config.tenants = vec![loketd::TenantConfig {
        name: "big".to_owned(),
        tokens: vec!["big-tenant-token".to_owned()],
        agents: Some(agents),
        ..loketd::TenantConfig::default()
    }];
    let daemon = rt.block_on(Spawned::start(config)).unwrap();

    let mut browser = Browser::launch();
    browser.navigate(&format!("http://{}/", daemon.http));
    browser.eval(
        "document.getElementById('token').value = 'big-tenant-token';\
         document.getElementById('login-form').requestSubmit(); true",
    );
    let page = browser
        .wait_for("10,000 agents counted", PAGE, |page| page["agent_range"] == "1–25 of 10,000");
    assert_eq!(
        page["presence"],
        json!({"available": 5_001, "away": 1_667, "offline": 1_666, "not_responding": 1_666})
    );
    assert_eq!(page["agents"], 10_000);
    assert_eq!(page["agent_rows"], 25);
    let teams = browser.eval("document.querySelectorAll('#teams tbody tr').length");
    assert_eq!(teams, 12);
    let nodes = browser.eval("document.getElementsByTagName('*').length");
    assert!(nodes.as_u64().unwrap() < 1_500, "the DOM stays small: {nodes} elements");

    browser.eval("document.getElementById('agents-next').click(); true");
    browser.set_field("agent-presence", "offline", "change");
    let page = browser.eval(PAGE);
    assert_eq!(page["agent_range"], "1–25 of 1,666", "a filter starts at its first page");
    assert!(browser.errors().is_empty(), "the page reported errors: {:#?}", browser.errors());
    drop(browser);
    rt.block_on(daemon.shutdown()).unwrap();
}
