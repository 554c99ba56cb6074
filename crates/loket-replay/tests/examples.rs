//! The example files in `examples/` replay as the README describes.

use std::path::Path;

use loket_replay::{BoundedLines, DEFAULT_MAX_LINE, Line, Replayer, RouterConfig};

fn replay(replayer: &mut Replayer, file: &str, agents: bool) -> (Vec<String>, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(file);
    let reader = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut lines = BoundedLines::new(reader, DEFAULT_MAX_LINE);
    let mut decisions = Vec::new();
    let mut errors = 0;
    while let Some((number, line)) = lines.next_line().unwrap() {
        let Line::Text(text) = line else { panic!("no long lines in the examples") };
        let mut out = Vec::new();
        let result = if agents {
            replayer.agent_line(number, text, &mut out)
        } else {
            replayer.event_line(number, text, &mut out)
        };
        errors += usize::from(result.is_err());
        decisions.extend(out.iter().map(|d| serde_json::to_string(d).unwrap()));
    }
    (decisions, errors)
}

#[test]
fn the_readme_examples_replay_with_two_reported_errors() {
    let mut replayer = Replayer::new(RouterConfig::default()).unwrap();
    let (_, agent_errors) = replay(&mut replayer, "agents.jsonl", true);
    assert_eq!(agent_errors, 0);
    let (decisions, errors) = replay(&mut replayer, "events.jsonl", false);
    assert_eq!(errors, 2, "negative capacity and an unknown agent");
    assert_eq!(
        decisions[0],
        r#"{"line":1,"at":1795424400000,"conversation":"c-101","agent":"anna","type":"assigned","reason":"skill_match","strategy":"least_loaded","waited_ms":0}"#
    );
    let summary = replayer.summary();
    assert_eq!((summary.messages, summary.queued, summary.agents), (5, 1, 5));
    assert!(replayer.router().audit().is_empty());
}
