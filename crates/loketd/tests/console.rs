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
//! A second test gives a tenant that measures (`[tenants.reports]`) six
//! people, 24 conversations and SLA targets of 8 seconds; most are answered
//! at once (some lead to an order), two late, the rest wait. It checks that
//! the page's service level now, per channel and on each lane, is what
//! `/v1/reports` gives; that its SLA counts and rows are the warnings and
//! breaches of the event stream; that today's three charts have marks; that
//! the *SLA* filter shows SLA events only; and that a tenant with reports
//! off gets a note instead.
//!
//! Both take a 1280x800 screenshot of the page, to `$CARGO_TARGET_TMPDIR`;
//! the second also to the file `LOKETD_CONSOLE_SCREENSHOT` names
//! (`docs/images/console.png` is made so).

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
    std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-demo.png"), &png).unwrap();

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

/// What the page shows of the measures, read from its DOM.
const MEASURES: &str = r#"(() => {
  const rows = (selector) => [...document.querySelectorAll(selector)];
  const number = (s) => Number(String(s).replace(/[^0-9]/g, ''));
  const marks = (id) => document.getElementById(id).querySelectorAll('rect, path, circle').length;
  return {
    levels: Object.fromEntries(rows('#levels .level-chip').map((c) =>
      [c.dataset.channel, c.querySelector('strong').textContent])),
    lane_levels: rows('#queues tbody tr').map((r) => [r.cells[0].textContent, r.cells[4].textContent]),
    levels_line: document.getElementById('levels').textContent,
    sla_tile: document.getElementById('stat-sla').textContent,
    sla_counts: Object.fromEntries(rows('#sla-counts .count').map((c) =>
      [c.dataset.kind, number(c.querySelector('strong').textContent)])),
    sla_rows: rows('#sla tbody tr').map((r) => ({type: r.dataset.type,
      conversation: r.cells[2].textContent, channel: r.cells[3].textContent,
      sla: r.cells[4].textContent, late: r.cells[5].textContent})),
    charts_hidden: document.getElementById('today-charts').hidden,
    today_note: document.getElementById('today-note').hidden ? '' : document.getElementById('today-note').textContent,
    marks: {service: marks('chart-service'), response: marks('chart-response'),
      conversion: marks('chart-conversion')},
    offered_bars: document.querySelectorAll('#chart-service rect.bar-offered').length,
    response_bars: rows('#chart-response rect').map((r) => r.getAttribute('class')),
  };
})()"#;

/// `ratio` as the page writes it: a whole percentage, or "–" for none.
fn percent(ratio: &Value) -> String {
    ratio.as_f64().map_or_else(|| "–".to_owned(), |r| format!("{}%", (r * 100.0).round()))
}

/// The service level per channel that `/v1/reports` gives for the page's
/// window (the current 15-minute interval and the one before), as the page
/// writes it.
fn levels_now(rt: &tokio::runtime::Runtime, addr: std::net::SocketAddr, token: &str) -> Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let from = now.as_millis() as u64 - 15 * 60_000;
    let path = format!("/v1/reports?from={from}&interval=15m&group_by=channel");
    let (status, report) = rt.block_on(http(addr, "GET", &path, Some(token), None));
    assert_eq!(status, 200, "{report}");
    let levels =
        report["groups"].as_array().unwrap().iter().filter(|row| row["group"] == "channel");
    levels
        .map(|row| (row["key"].as_str().unwrap().to_owned(), json!(percent(&row["service_level"]))))
        .collect()
}

fn sign_in(browser: &mut Browser, token: &str) {
    browser.eval(&format!(
        "document.getElementById('token').value = '{token}';\
         document.getElementById('login-form').requestSubmit(); true"
    ));
}

#[test]
fn service_levels_sla_breaches_and_todays_charts_show_what_the_tenant_measured() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Six people, 18 places: of 24 conversations some wait. Targets of 8 s
    // (a warning at 4 s), so that the test sees breaches.
    let mut lines = String::new();
    for (i, id) in ["anna", "bram", "carla", "daan", "eva", "finn"].into_iter().enumerate() {
        let team = ["garden", "orders"][i % 2];
        let agent = json!({"id": id, "team": team,
            "skills": {"service": 5, "sales": 5, "returns": 5}, "languages": ["nl", "en"],
            "capacity": {"chat": 2, "whatsapp": 2, "voice": 1, "total": 3}});
        lines.push_str(&format!("{agent}\n"));
    }
    let agents = dir.path().join("agents.jsonl");
    std::fs::write(&agents, lines).unwrap();
    let mut shop = loketd::TenantConfig {
        name: "shop".to_owned(),
        tokens: vec!["shop-token".to_owned()],
        agents: Some(agents),
        ..loketd::TenantConfig::default()
    };
    shop.reports.enabled = true;
    shop.reports.sla.warning_permille = 500;
    let targets = &mut shop.reports.sla.defaults;
    for channel in [&mut targets.chat, &mut targets.whatsapp, &mut targets.voice] {
        channel.first_reply_ms = 8_000;
    }
    let mut unmeasured = support::other_tenant();
    unmeasured.reports.enabled = false;
    let mut config = config(&dir.path().join("data"));
    config.tenants = vec![shop, unmeasured];
    let daemon = rt.block_on(Spawned::start(config)).unwrap();
    let addr = daemon.http;
    let token = "shop-token";

    let texts = [
        "waar blijft mijn bestelling?",
        "hebben jullie nog olijfbomen?",
        "ik wil iets retourneren",
    ];
    let mut messages = Vec::new();
    for i in 0..24 {
        let channel = ["chat", "whatsapp", "chat", "voice", "whatsapp", "chat"][i % 6];
        messages.push(message(&format!("{channel}-{i}"), &format!("k{i}"), channel, texts[i % 3]));
    }
    let body = json!({"messages": messages}).to_string();
    let (status, answer) =
        rt.block_on(http(addr, "POST", "/v1/messages/batch", Some(token), Some(&body)));
    assert_eq!(status, 200, "{answer}");
    // People answer every conversation they took at once, but two; some
    // of the answered ones lead to an order.
    let mut assigned = Vec::new();
    let mut waiting = Vec::new();
    for decision in answer["decisions"].as_array().unwrap() {
        let conversation = decision["conversation"].as_str().unwrap().to_owned();
        match decision["type"].as_str().unwrap() {
            "assigned" => {
                assigned.push((conversation, decision["agent"].as_str().unwrap().to_owned()))
            }
            "queued" => waiting.push(conversation),
            other => panic!("{other}: {decision}"),
        }
    }
    assert!(assigned.len() >= 12 && waiting.len() >= 4, "{answer}");
    let reply = |(conversation, agent): &(String, String)| {
        let body = json!({"agent": agent}).to_string();
        let path = format!("/v1/conversations/{conversation}/replies");
        let (status, answer) = rt.block_on(http(addr, "POST", &path, Some(token), Some(&body)));
        assert_eq!(status, 200, "{answer}");
    };
    let held = &assigned[..2];
    for (i, pair) in assigned[2..].iter().enumerate() {
        reply(pair);
        if i % 3 == 0 {
            let path = format!("/v1/conversations/{}/orders", pair.0);
            let body = json!({"value": 49.95, "currency": "EUR"}).to_string();
            let (status, answer) = rt.block_on(http(addr, "POST", &path, Some(token), Some(&body)));
            assert_eq!(status, 200, "{answer}");
        }
    }

    let mut browser = Browser::launch();
    browser.navigate(&format!("http://{addr}/"));
    sign_in(&mut browser, token);

    // The held and the waiting conversations are warned, then breach.
    let late: Vec<&String> = held.iter().map(|(c, _)| c).chain(&waiting).collect();
    let page = browser.wait_for("every breach on the page", MEASURES, |page| {
        page["sla_counts"]["first_reply"] == late.len()
            && page["sla_counts"]["warnings"] == late.len()
    });
    let (_, stats) = rt.block_on(http(addr, "GET", "/v1/stats", Some(token), None));
    let stream = rt.block_on(support::events(
        addr,
        token,
        Some(1),
        stats["last_seq"].as_u64().unwrap() as usize,
        WAIT,
    ));
    let sla: Vec<&Value> = stream
        .iter()
        .map(|(_, _, data)| data)
        .filter(|data| data["type"].as_str().is_some_and(|t| t.starts_with("sla_")))
        .collect();
    let mut breached: Vec<&str> = sla
        .iter()
        .filter(|e| e["type"] == "sla_breached")
        .map(|e| e["conversation"].as_str().unwrap())
        .collect();
    breached.sort_unstable();
    let mut expected: Vec<&str> = late.iter().map(|c| c.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(breached, expected, "the held and the waiting conversations breach");
    assert_eq!(sla.len(), 2 * late.len(), "a warning and a breach each: {sla:#?}");
    assert_eq!(page["sla_tile"], json!(late.len().to_string()));
    assert_eq!(page["sla_counts"]["next_reply"], 0);
    // The newest eight, newest first, as the stream has them.
    let newest: Vec<Value> = sla
        .iter()
        .rev()
        .take(8)
        .map(|e| {
            let kind = e["type"].as_str().unwrap();
            json!({"type": kind, "conversation": e["conversation"], "sla": "first reply, 8 s"})
        })
        .collect();
    let page = browser.wait_for("the channels of the SLA rows", MEASURES, |page| {
        page["sla_rows"].as_array().is_some_and(|rows| rows.iter().all(|r| r["channel"] != "–"))
    });
    let rows = page["sla_rows"].as_array().unwrap();
    let shown: Vec<Value> = rows
        .iter()
        .map(|r| json!({"type": r["type"], "conversation": r["conversation"], "sla": r["sla"]}))
        .collect();
    assert_eq!(shown, newest, "{page:#}");
    for row in rows {
        let conversation = row["conversation"].as_str().unwrap();
        assert!(conversation.starts_with(row["channel"].as_str().unwrap()), "{row}");
        let over = row["late"].as_str().unwrap();
        assert_eq!(over.starts_with('+'), row["type"] == "sla_breached", "{row}");
    }

    // The held two are answered late: the service level drops, and the
    // page shows what /v1/reports gives, per channel and on each lane.
    for pair in held {
        reply(pair);
    }
    let page = browser.wait_for("the service level now of /v1/reports", MEASURES, |page| {
        page["levels"] == levels_now(&rt, addr, token)
    });
    let levels = levels_now(&rt, addr, token);
    assert!(levels.as_object().unwrap().values().any(|l| l != "100%"), "{levels}");
    for lane in page["lane_levels"].as_array().unwrap() {
        assert_eq!(lane[1], levels[lane[0].as_str().unwrap()], "{page:#}");
    }
    assert!(!page["lane_levels"].as_array().unwrap().is_empty(), "someone waits: {page:#}");

    // Today's charts are drawn: offered bars and the service level line,
    // p50 and p90 bars per channel, conversion bars by first-response band.
    assert_eq!(page["charts_hidden"], false, "{page:#}");
    let marks = &page["marks"];
    for chart in ["service", "response", "conversion"] {
        assert!(marks[chart].as_u64().unwrap() > 0, "{chart}: {page:#}");
    }
    assert!(page["offered_bars"].as_u64().unwrap() >= 1, "{page:#}");
    let bars = page["response_bars"].as_array().unwrap();
    assert!(bars.contains(&json!("bar-p50")) && bars.contains(&json!("bar-p90")), "{page:#}");

    // The filter shows the SLA events only.
    browser.set_field("event-filter", "sla", "change");
    let types = browser.eval(
        "[...new Set([...document.querySelectorAll('#events tbody tr .type')].map((t) => t.textContent))].sort()",
    );
    assert_eq!(types, json!(["sla breached", "sla warning"]));
    browser.set_field("event-filter", "", "change");

    // Loaded again (the token is in the tab), the charts hold the late
    // answers too: the screenshot of the README.
    browser.navigate(&format!("http://{addr}/"));
    browser.wait_for("the charts after a reload", MEASURES, |page| {
        page["marks"]["conversion"].as_u64().is_some_and(|n| n > 0)
            && page["levels"] == levels_now(&rt, addr, token)
            && page["sla_rows"]
                .as_array()
                .is_some_and(|rows| rows.len() == 8 && rows.iter().all(|r| r["channel"] != "–"))
    });
    let highlights = "document.getAnimations().filter((a) => a.animationName === 'fresh').length";
    browser.wait_for("the new rows' highlight to fade", highlights, |running| running == 0);
    let png = browser.screenshot();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let target = std::env::var_os("LOKETD_CONSOLE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png"));
    std::fs::write(&target, &png).unwrap();

    // A tenant that does not measure: a note, no charts, no levels.
    browser.eval("document.getElementById('signout').click(); true");
    sign_in(&mut browser, "other-token");
    let page = browser.wait_for("the note of a tenant without reports", MEASURES, |page| {
        page["today_note"].as_str().is_some_and(|note| note.contains("does not measure"))
    });
    assert_eq!(page["charts_hidden"], true, "{page:#}");
    assert_eq!(page["sla_tile"], "–");
    assert!(page["levels_line"].as_str().unwrap().contains("not measured"), "{page:#}");

    assert!(browser.errors().is_empty(), "the page reported errors: {:#?}", browser.errors());
    drop(browser);
    rt.block_on(daemon.shutdown()).unwrap();
}
