//! Unit tests of the protocol rules: output parsing, exit mapping, bounded buffers.

use super::*;
use serde_json::json;

fn failed(outcome: ExecOutcome) -> (ErrorKind, String) {
    match outcome {
        ExecOutcome::Failed { kind, error } => (kind, error),
        ExecOutcome::Succeeded(v) => panic!("expected a failure, got success {v}"),
    }
}

#[test]
fn one_json_value_with_whitespace_is_accepted() {
    assert_eq!(
        parse_output(b"  \n{\"a\": [1, 2]}\n\n").unwrap(),
        json!({"a": [1, 2]})
    );
    assert_eq!(parse_output(b"42").unwrap(), json!(42));
    assert_eq!(parse_output(b"\"s\"\n").unwrap(), json!("s"));
}

#[test]
fn empty_garbage_and_two_values_are_bad_output() {
    for bad in [
        &b""[..],
        b"   \n",
        b"hello",
        b"{\"a\":1} {\"b\":2}",
        b"1 2",
        b"{\"a\":",
    ] {
        let err = parse_output(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadOutput);
        assert!(
            err.to_string()
                .starts_with("agent stdout is not one JSON value: "),
            "{err}"
        );
    }
}

#[test]
fn bad_output_error_never_carries_the_raw_output() {
    let mut raw = b"{\"x\": 1} ".to_vec();
    raw.extend(std::iter::repeat_n(b'z', 10_000));
    let err = parse_output(&raw).unwrap_err().to_string();
    assert!(err.len() < 300, "error is {} bytes", err.len());
    assert!(!err.contains("zzzz"), "{err}");
}

#[test]
fn exit_codes_map_to_kinds() {
    assert_eq!(exit_outcome(0, b"{}"), ExecOutcome::Succeeded(json!({})));
    assert_eq!(
        failed(exit_outcome(0, b"nope")).0,
        ErrorKind::BadOutput,
        "exit 0 with garbage"
    );
    assert_eq!(
        failed(exit_outcome(3, b"{}")),
        (ErrorKind::Exit, "agent exited with code 3".to_owned())
    );
    assert_eq!(
        failed(exit_outcome(78, b"")),
        (ErrorKind::Permanent, "agent exited with code 78".to_owned())
    );
    assert_eq!(failed(exit_outcome(-1, b"")).0, ErrorKind::Exit);
}

#[test]
fn signals_timeouts_and_cancels_have_clear_errors() {
    assert_eq!(
        failed(signal_outcome(9)),
        (
            ErrorKind::Exit,
            "agent was killed by signal SIGKILL (9)".to_owned()
        )
    );
    assert_eq!(
        failed(signal_outcome(64)).1,
        "agent was killed by signal 64"
    );
    assert_eq!(
        failed(timeout_outcome(Duration::from_secs(120))),
        (ErrorKind::Timeout, "timed out after 120s".to_owned())
    );
    assert_eq!(
        failed(timeout_outcome(Duration::from_millis(300))).1,
        "timed out after 0.3s"
    );
    assert_eq!(failed(cancelled_outcome()).0, ErrorKind::Cancelled);
}

#[test]
fn output_buffer_accepts_exactly_the_limit() {
    let mut out = OutputBuffer::new(10);
    out.push(b"12345").unwrap();
    out.push(b"67890").unwrap();
    assert_eq!(out.as_bytes(), b"1234567890");
    let err = out.push(b"x").unwrap_err();
    assert_eq!(err, Error::OutputTooLarge { limit: 10 });
    assert_eq!(err.to_string(), "output exceeds 10 bytes");
    assert_eq!(out.into_bytes().len(), 10, "the rejected chunk is not kept");
}

#[test]
fn output_buffer_rejects_one_big_chunk() {
    let mut out = OutputBuffer::new(1 << 20);
    let err = out.push(&vec![b'a'; (1 << 20) + 1]).unwrap_err();
    assert_eq!(err.to_string(), "output exceeds 1048576 bytes");
    assert_eq!(err.kind(), ErrorKind::OutputTooLarge);
}

#[test]
fn tail_keeps_only_the_last_bytes() {
    let mut tail = TailBuffer::new(8);
    tail.push(b"abc");
    assert_eq!(tail.to_text(), "abc");
    assert!(!tail.truncated());
    tail.push(b"defghij");
    assert_eq!(tail.to_text(), "cdefghij");
    tail.push(b"0123456789ABCDEF");
    assert_eq!(tail.to_text(), "89ABCDEF");
    assert!(tail.truncated());
    assert_eq!(tail.len(), 8);
}

#[test]
fn tail_stays_bounded_over_many_small_pushes() {
    let mut tail = TailBuffer::new(100);
    for i in 0..10_000 {
        tail.push(format!("line {i}\n").as_bytes());
        assert!(tail.len() <= 100);
    }
    let text = tail.to_text();
    assert!(text.ends_with("line 9999\n"), "{text}");
    assert!(text.len() <= 100);
}

#[test]
fn tail_cut_in_a_character_drops_its_remains() {
    // "é" is two bytes (C3 A9), "€" three (E2 82 AC).
    let mut tail = TailBuffer::new(5);
    // 78 C3 A9 E2 82 AC: the last 5 bytes are C3 A9 E2 82 AC.
    tail.push("xé€".as_bytes());
    assert_eq!(tail.to_text(), "é€");
    tail.push(b"!");
    // Now A9 E2 82 AC 21: the orphan A9 is dropped.
    assert_eq!(tail.to_text(), "€!");
    tail.push("€".as_bytes());
    // AC 21 E2 82 AC: orphan AC dropped.
    assert_eq!(tail.to_text(), "!€");
}

#[test]
fn tail_text_never_exceeds_capacity_even_with_invalid_utf8() {
    let mut tail = TailBuffer::new(4);
    tail.push(&[0xFF, 0xFE, 0xFD, 0xFC, 0xFB]);
    let text = tail.to_text();
    assert!(text.len() <= 4, "{text:?}");
    assert!(text.contains('\u{FFFD}'));
}

#[test]
fn zero_capacity_tail_keeps_nothing() {
    let mut tail = TailBuffer::new(0);
    tail.push(b"abc");
    assert!(tail.is_empty());
    assert_eq!(tail.to_text(), "");
}

#[test]
fn redact_replaces_every_secret_and_stays_within_the_limit() {
    let log = "token=s3cr3t; again s3cr3t; pw=hunter2\n";
    let out = redact(log, &["s3cr3t", "hunter2", ""], 1000);
    assert_eq!(out, "token=[redacted]; again [redacted]; pw=[redacted]\n");
    // Short secrets grow the text; the limit still holds.
    let out = redact("a b a b a b", &["a", "b"], 20);
    assert!(out.len() <= 20, "{out}");
    assert!(out.ends_with("[redacted]"), "{out}");
    assert_eq!(redact("xx", &["x"], 100), "[redacted][redacted]");
}

#[test]
fn redact_encoded_hides_the_value_and_its_base64_forms() {
    // Its base64 has a '/', which the URL-safe alphabet spells '_'.
    let secret = "sup3r-tok>>?\n";
    let std_b64 = "c3VwM3ItdG9rPj4/"; // base64 of the trimmed value
    let url_b64 = "c3VwM3ItdG9rPj4_";
    let log = format!("a sup3r-tok>>? b {std_b64} c {url_b64} d\n");
    let out = redact_encoded(&log, &[secret], 1000);
    assert_eq!(out, "a [redacted] b [redacted] c [redacted] d\n");
    // The padded encoding of the untrimmed value (with its newline) too.
    let padded = "c3VwM3ItdG9rPj4/Cg==";
    assert_eq!(redact_encoded(padded, &[secret], 1000), "[redacted]");
    assert_eq!(
        redact_encoded("nothing here", &[secret, ""], 1000),
        "nothing here"
    );
}

#[test]
fn secret_forms_are_longest_first_and_unique() {
    let forms = secret_forms("abc");
    assert!(forms.contains(&"abc".to_owned()));
    assert!(forms.contains(&"YWJj".to_owned()));
    let mut sorted = forms.clone();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.len()));
    assert_eq!(forms, sorted);
    let mut unique = forms.clone();
    unique.dedup();
    assert_eq!(forms, unique);
    assert!(secret_forms("  ").is_empty());
}
