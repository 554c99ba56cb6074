//! End-to-end tests of `loket intent train|eval|cv` and `loket score`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn loket() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loket"))
}

/// A fresh directory under the target directory (no tempdir crate needed).
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("intent_cli_{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("loket runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line {last:?} is not JSON: {e}"))
}

const TRAIN: &str = "text,label
wat kost deze jas,buy.price
hoeveel kost het,buy.price
wat is de prijs,buy.price
how much is this,buy.price
whats the price,buy.price
how much does it cost,buy.price
waar is mijn pakket,service.track
mijn pakket is niet bezorgd,service.track
wanneer komt mijn bestelling,service.track
where is my package,service.track
my order has not arrived,service.track
when will my order arrive,service.track
ik wil retourneren,service.return
hoe stuur ik het terug,service.return
i want to return this,service.return
how do i send it back,service.return
";

const TEST: &str = "text,label
wat kost die broek,buy.price
how much is it,buy.price
waar blijft mijn pakket,service.track
where is my order,service.track
ik wil het terugsturen,service.return
het weer in parijs,oos
";

fn write_data(dir: &Path) -> (PathBuf, PathBuf) {
    let train = dir.join("train.csv");
    let test = dir.join("test.csv");
    std::fs::write(&train, TRAIN).unwrap();
    std::fs::write(&test, TEST).unwrap();
    (train, test)
}

#[test]
fn train_is_deterministic_and_eval_reports_json() {
    let dir = temp_dir("train");
    let (train, test) = write_data(&dir);
    let a = dir.join("a.lkm");
    let b = dir.join("b.lkm");
    for out in [&a, &b] {
        let o = run(loket()
            .args(["intent", "train", "--bucket-bits", "12", "--seed", "7", "--data"])
            .arg(&train)
            .arg("--out")
            .arg(out));
        assert!(String::from_utf8_lossy(&o.stderr).contains("trained"), "progress on stderr");
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same seed, same model");

    let o = run(loket().args(["intent", "eval", "--model"]).arg(&a).arg("--data").arg(&test));
    let j = last_json(&o);
    assert_eq!(j["n"], 6);
    for key in ["accuracy", "macro_f1", "msgs_per_sec", "oos_recall"] {
        assert!(j[key].is_number(), "{key} missing in {j}");
    }
    let acc = j["accuracy"].as_f64().unwrap();
    assert!(acc >= 4.0 / 6.0, "{j}");
    assert!(j["msgs_per_sec"].as_f64().unwrap() > 0.0);
    assert!(j.get("handoff").is_none(), "no handoff column, no hand-off metrics: {j}");
}

/// Training rows with hand-off labels and languages.
const TRAIN_HANDOFF: &str = "text,label,handoff,language
wat kost deze jas,buy.price,none,nl
hoeveel kost het,buy.price,none,nl
how much is this,buy.price,none,en
whats the price,buy.price,none,en
ik twijfel tussen de m en de l,buy.size,doubt,nl
twijfel over de maat van de jas,buy.size,doubt,nl
not sure which size to take,buy.size,doubt,en
im torn between the two sizes,buy.size,doubt,en
welke maten zijn er,buy.size,none,nl
which sizes do you have,buy.size,none,en
dit is belachelijk nog steeds niks,service.complaint,complaint,nl
waardeloze service echt,service.complaint,complaint,nl
this is ridiculous still nothing,service.complaint,complaint,en
worst service ever honestly,service.complaint,complaint,en
ik wil een medewerker spreken,service.human,human,nl
bel me terug alsjeblieft,service.human,human,nl
i want to talk to a person,service.human,human,en
call me back please,service.human,human,en
waar is mijn pakket,service.track,none,nl
where is my package,service.track,none,en
";

/// Held-out rows: hand-off labels, no language column (detected instead).
const TEST_HANDOFF: &str = "text,label,handoff
twijfel tussen de s en de m,buy.size,doubt
not sure about the size,buy.size,doubt
dit is echt belachelijk,service.complaint,complaint
this is ridiculous,service.complaint,complaint
kan een medewerker me bellen,service.human,human
can a person call me back,service.human,human
wat kost die broek,buy.price,none
where is my order,service.track,none
";

#[test]
fn eval_reports_handoff_metrics_per_kind_and_language() {
    let dir = temp_dir("eval_handoff");
    let train = dir.join("handoff_train.csv");
    let test = dir.join("handoff_test.csv");
    std::fs::write(&train, TRAIN_HANDOFF).unwrap();
    std::fs::write(&test, TEST_HANDOFF).unwrap();
    let model = dir.join("m.lkm");
    let o = run(loket()
        .args(["intent", "train", "--bucket-bits", "12", "--handoff-folds", "2", "--data"])
        .arg(&train)
        .arg("--out")
        .arg(&model));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("calibrated the hand-off head"), "{stderr}");
    let bytes = std::fs::read(&model).unwrap();
    let recorded = b"--handoff-c 1 --handoff-max-false 0.04 --handoff-folds 2";
    assert!(bytes.windows(recorded.len()).any(|w| w == recorded), "options in the provenance");

    for (data, per_kind) in [(&test, 2), (&train, 4)] {
        let o =
            run(loket().args(["intent", "eval", "--model"]).arg(&model).arg("--data").arg(data));
        let j = last_json(&o);
        // The existing fields stay.
        for key in ["accuracy", "macro_f1", "n", "msgs_per_sec", "in_scope_accuracy", "buying_auc"]
        {
            assert!(j.get(key).is_some(), "{key} missing in {j}");
        }
        let h = &j["handoff"];
        assert_eq!(h["source"], "model", "{h}");
        for key in ["n", "precision", "recall", "f1", "macro_f1", "plain", "false_handoffs"] {
            assert!(h[key].is_number(), "{key} missing in {h}");
        }
        let rate = h["false_handoff_rate"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&rate), "{h}");
        for key in ["precision", "recall", "f1"] {
            assert!(h["any"][key].is_number(), "any.{key} missing in {h}");
        }
        for kind in ["doubt", "complaint", "human"] {
            let k = &h["kinds"][kind];
            for key in ["precision", "recall", "f1", "support"] {
                assert!(k[key].is_number(), "kinds.{kind}.{key} missing in {h}");
            }
            assert_eq!(k["support"], per_kind, "{kind} in {h}");
        }
        // Per language: the language column, or the detected language.
        for lang in ["nl", "en"] {
            let l = &h["languages"][lang];
            assert!(
                l["f1"].is_number() && l["kinds"]["doubt"]["recall"].is_number(),
                "{lang}: {h}"
            );
        }
        let n = h["languages"].as_object().unwrap().values().map(|l| l["n"].as_u64().unwrap());
        assert_eq!(n.sum::<u64>(), h["n"].as_u64().unwrap());
    }
    let o = run(loket().args(["intent", "eval", "--model"]).arg(&model).arg("--data").arg(&test));
    let h = &last_json(&o)["handoff"];
    assert_eq!(h["n"], 8);
    assert_eq!(h["plain"], 2);
    assert!(h["f1"].as_f64().unwrap() >= 0.5, "{h}");

    // A model without a hand-off head is measured by its lexicon signals.
    let (plain_train, _) = write_data(&dir);
    let plain = dir.join("plain.lkm");
    run(loket()
        .args(["intent", "train", "--bucket-bits", "10", "--data"])
        .arg(&plain_train)
        .arg("--out")
        .arg(&plain));
    let o = run(loket().args(["intent", "eval", "--model"]).arg(&plain).arg("--data").arg(&test));
    let h = &last_json(&o)["handoff"];
    assert_eq!(h["source"], "lexicon", "{h}");
    assert!(h["kinds"]["human"]["recall"].as_f64().unwrap() > 0.0, "{h}");
}

#[test]
fn bad_handoff_labels_name_the_line() {
    let dir = temp_dir("bad_handoff");
    let data = dir.join("bad.csv");
    std::fs::write(&data, "text,label,handoff\nfine,a,none\nangry,b,furious\n").unwrap();
    let o = loket()
        .args(["intent", "train", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.join("x.lkm"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.csv:3") && err.contains("handoff"), "{err}");
}

#[test]
fn feature_options_change_the_model_and_are_recorded_in_it() {
    let dir = temp_dir("options");
    let (train, test) = write_data(&dir);
    let plain = dir.join("plain.lkm");
    let options = dir.join("options.lkm");
    let switches = ["--stem-words", "--content-pairs", "--negation-token", "--idf"];
    for (out, extra) in [(&plain, &[][..]), (&options, &switches[..])] {
        run(loket()
            .args(["intent", "train", "--bucket-bits", "12", "--data"])
            .arg(&train)
            .arg("--out")
            .arg(out)
            .args(extra));
    }
    let bytes = std::fs::read(&options).unwrap();
    // Every switch reaches the model.
    let model = loket_intent::Model::open(&options).unwrap();
    let config = model.feature_config();
    assert!(config.stem_words && config.content_pairs && config.negation_token, "{config:?}");
    assert!(model.uses_idf());
    let plain = loket_intent::Model::open(&plain).unwrap();
    assert_eq!(plain.feature_config().flags(), 0);
    assert!(!plain.uses_idf());
    // The provenance names every switch, in the command's spelling.
    let recorded = switches.join(" ");
    assert!(bytes.windows(recorded.len()).any(|w| w == recorded.as_bytes()), "{recorded}");
    let o = run(loket().args(["intent", "eval", "--model"]).arg(&options).arg("--data").arg(&test));
    let j = last_json(&o);
    assert_eq!(j["n"], 6);
    assert!(j["accuracy"].as_f64().unwrap() >= 4.0 / 6.0, "{j}");
}

#[test]
fn eval_without_oos_rows_has_no_oos_recall() {
    let dir = temp_dir("eval_no_oos");
    let (train, _) = write_data(&dir);
    let model = dir.join("m.lkm");
    run(loket()
        .args(["intent", "train", "--bucket-bits", "10", "--data"])
        .arg(&train)
        .arg("--out")
        .arg(&model));
    let o = run(loket().args(["intent", "eval", "--model"]).arg(&model).arg("--data").arg(&train));
    let j = last_json(&o);
    assert!(j.get("oos_recall").is_none(), "{j}");
    assert_eq!(j["n"], 16);
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = temp_dir("errors");
    let bad_csv = dir.join("bad.csv");
    std::fs::write(&bad_csv, "text,label\nfine,a\n\"unterminated,b\nx\n").unwrap();
    let ragged = dir.join("ragged.csv");
    std::fs::write(&ragged, "text,label\nfine,a\nno label here\n").unwrap();
    let o = loket()
        .args(["intent", "train", "--data"])
        .arg(&ragged)
        .arg("--out")
        .arg(dir.join("x.lkm"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ragged.csv:3"), "{err}");

    let not_a_model = dir.join("not_a_model.lkm");
    std::fs::write(&not_a_model, b"hello, I am not a model").unwrap();
    let o = loket()
        .args(["intent", "eval", "--model"])
        .arg(&not_a_model)
        .arg("--data")
        .arg(&ragged)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a loket intent model"));
}

#[test]
fn score_builtin_with_bad_lines_and_conversations() {
    let input = concat!(
        "{\"text\": \"kan ik met ideal betalen?\", \"conversation_id\": \"c1\", \"timestamp_ms\": 1000}\n",
        "this is not json\n",
        "\n",
        "{\"text\": \"ik wil een medewerker spreken\"}\n",
        "{\"no_text\": 1}\n",
        "{\"text\": \"wat kost de jas in maat l\", \"conversation_id\": \"c1\", \"timestamp_ms\": 5000}\n",
    );
    let mut child = loket()
        .args(["score", "--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // One output line per non-blank input line.
    assert_eq!(lines.len(), 5, "{lines:?}");

    let first = &lines[0];
    assert_eq!(first["line"], 1);
    assert_eq!(first["language"], "nl");
    assert!(first["buying_intent"].as_f64().unwrap() > 0.5, "{first}");
    assert!(first["signals"].as_array().unwrap().contains(&"payment".into()), "{first}");
    assert_eq!(first["conversation_id"], "c1");
    let c1 = first["conversation_score"].as_f64().unwrap();

    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("line 2"), "{}", lines[1]);

    let human = &lines[2];
    assert_eq!(human["line"], 4);
    assert!(human["signals"].as_array().unwrap().contains(&"human_request".into()));
    // The built-in model's hand-off judgement, explained.
    assert_eq!(human["handoff"]["kind"], "human", "{human}");
    assert!(human["handoff"]["p"].as_f64().unwrap() > 0.5, "{human}");
    let words = human["handoff"]["words"].as_array().unwrap();
    assert!(words.contains(&"medewerker".into()), "{human}");
    assert!(human["signals"].as_array().unwrap().contains(&"handoff_human".into()), "{human}");
    assert_eq!(first["handoff"]["kind"], "none", "{first}");
    assert_eq!(first["handoff"]["words"], serde_json::json!([]), "{first}");
    assert!(human.get("conversation_score").is_none());
    for key in ["intent", "confidence", "buying_intent", "language", "signals"] {
        assert!(human.get(key).is_some(), "{key} missing in {human}");
    }

    assert_eq!(lines[3]["line"], 5);
    assert!(lines[3]["error"].is_string());

    let second = &lines[4];
    assert!(second["conversation_score"].as_f64().unwrap() > c1, "{second}");
}

#[test]
fn score_with_a_trained_model_from_a_file() {
    let dir = temp_dir("score_model");
    let (train, _) = write_data(&dir);
    let model = dir.join("m.lkm");
    run(loket()
        .args(["intent", "train", "--bucket-bits", "10", "--data"])
        .arg(&train)
        .arg("--out")
        .arg(&model));
    let input = dir.join("in.jsonl");
    std::fs::write(
        &input,
        "{\"text\": \"how much is the coat\"}\n{\"text\": \"waar is mijn pakket\"}\n",
    )
    .unwrap();
    let o = run(loket().arg("score").arg("--model").arg(&model).arg("--input").arg(&input));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["intent"], "buy.price");
    assert_eq!(lines[1]["intent"], "service.track");
    assert!(lines[0].get("handoff").is_none(), "no hand-off head, no judgement: {}", lines[0]);
    assert!(
        lines[0]["buying_intent"].as_f64().unwrap() > lines[1]["buying_intent"].as_f64().unwrap()
    );
}

#[test]
fn cross_validation_reports_a_mean() {
    let dir = temp_dir("cv");
    let (train, _) = write_data(&dir);
    let o = run(loket()
        .args(["intent", "cv", "--folds", "2", "--bucket-bits", "10", "--data"])
        .arg(&train));
    let j = last_json(&o);
    assert_eq!(j["folds"], 2);
    assert!(j["accuracy"].as_f64().unwrap() > 0.3, "{j}");
}
