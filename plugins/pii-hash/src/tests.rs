use super::*;
use adstream_sdk::TextBuilder;
use adstream_sdk::{DictBuilder, Secret, field};
use proptest::prelude::*;

const KEY: &[u8] = b"0123456789abcdef-test-key";

fn setup(config: &str, key: Option<&[u8]>) -> Setup {
    Setup {
        config: config.to_string(),
        input: vec![
            field("user_id", ColumnKind::Text, true),
            field("country", ColumnKind::Dictionary, false),
            field("ip", ColumnKind::Text, true),
            field("event_id", ColumnKind::Text, false),
        ],
        secrets: key
            .map(|k| {
                vec![Secret {
                    name: "key".to_string(),
                    value: k.to_vec(),
                }]
            })
            .unwrap_or_default(),
    }
}

use adstream_sdk::ColumnKind;

fn batch(users: &[Option<&str>], ips: &[Option<&str>]) -> Batch {
    let mut u = TextBuilder::default();
    let mut c = DictBuilder::default();
    let mut ip = TextBuilder::default();
    let mut id = TextBuilder::default();
    for (i, (user, addr)) in users.iter().zip(ips).enumerate() {
        u.push_opt(*user);
        c.push(if i % 2 == 0 { "US" } else { "KR" });
        ip.push_opt(*addr);
        id.push(&format!("e{i}"));
    }
    Batch::from_columns(vec![
        u.finish("user_id"),
        c.finish("country"),
        ip.finish("ip"),
        id.finish("event_id"),
    ])
    .unwrap()
}

#[test]
fn hmac_matches_rfc4231_vector() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    let h = KeyedHash::new(Algorithm::HmacSha256, b"Jefe", 32);
    assert_eq!(
        h.hash_hex(b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn hashes_configured_fields_and_keeps_others() {
    let (mut p, fields) = PiiHash::configure(&setup(r#"{"hash":["user_id"]}"#, Some(KEY))).unwrap();
    assert_eq!(fields.len(), 4);
    let out = p
        .transform(batch(&[Some("alice"), None], &[Some("1.2.3.4"), None]))
        .unwrap();
    let users = out.text("user_id").unwrap();
    let expected = KeyedHash::new(Algorithm::HmacSha256, KEY, 16).hash_hex(b"alice");
    assert_eq!(users.get(0), Some(expected.as_str()));
    assert_eq!(users.get(0).unwrap().len(), 32);
    assert_eq!(users.get(1), None, "a null stays null");
    assert_eq!(out.text("event_id").unwrap().get(1), Some("e1"));
}

/// The digests other tools give for the same key and value, so that a pseudonymised id
/// can be matched outside adstream (as `Algorithm` promises): Python's
/// `hmac.new(KEY, b"alice", hashlib.sha256).hexdigest()[:32]`, and the `blake3` package's
/// `blake3(b"alice", key=blake3(KEY, derive_key_context=CONTEXT).digest())`.
#[test]
fn digests_match_other_implementations() {
    let hmac = KeyedHash::new(Algorithm::HmacSha256, KEY, 16);
    assert_eq!(hmac.hash_hex(b"alice"), "e574d7c57c8410187a6670283e42082e");
    let blake3 = KeyedHash::new(Algorithm::Blake3, KEY, 16);
    assert_eq!(
        blake3.hash_hex(b"alice"),
        "a3fce5ef57fb8bf03dd25490669cd88a"
    );
}

#[test]
fn dictionary_columns_hash_like_text() {
    let cfg = r#"{"hash":["country"], "algorithm": "blake3"}"#;
    let (mut p, _) = PiiHash::configure(&setup(cfg, Some(KEY))).unwrap();
    let out = p
        .transform(batch(&[Some("a"), Some("b")], &[None, None]))
        .unwrap();
    let countries = out.text("country").unwrap();
    let expected = KeyedHash::new(Algorithm::Blake3, KEY, 16).hash_hex(b"KR");
    assert_eq!(countries.get(1), Some(expected.as_str()));
    assert!(countries.key(1).is_some(), "still dictionary-encoded");
}

#[test]
fn truncates_ips_and_nulls_non_addresses() {
    let cfg = r#"{"truncate_ip":["ip"], "drop":["event_id"]}"#;
    let (mut p, fields) = PiiHash::configure(&setup(cfg, Some(KEY))).unwrap();
    assert!(fields.iter().all(|f| f.name != "event_id"));
    let ips = [
        Some("203.0.113.77"),
        Some("2001:db8:85a3:8d3:1319:8a2e:370:7348"),
        Some("nope"),
    ];
    let out = p.transform(batch(&[None, None, None], &ips)).unwrap();
    let col = out.text("ip").unwrap();
    assert_eq!(col.get(0), Some("203.0.113.0"));
    assert_eq!(col.get(1), Some("2001:db8:85a3::"));
    assert_eq!(col.get(2), None);
    assert!(out.column("event_id").is_none());
    assert_eq!(adstream_sdk::log::counts().get("unparseable_ip"), Some(&1));
}

#[test]
fn missing_or_short_key_is_a_config_error() {
    let err = PiiHash::configure(&setup(r#"{"hash":["user_id"]}"#, None))
        .err()
        .unwrap();
    assert!(
        err.describe().contains("secret `key` is missing"),
        "{}",
        err.describe()
    );
    let err = PiiHash::configure(&setup(r#"{"hash":["user_id"]}"#, Some(b"short")))
        .err()
        .unwrap();
    assert!(err.describe().contains("at least 16"), "{}", err.describe());
}

#[test]
fn config_mistakes_are_reported() {
    let bad = [
        (r#"{"hsah":["user_id"]}"#, "unknown field `hsah`"),
        (r#"{"hash":["nope"]}"#, "no column `nope`"),
        (
            r#"{"hash":["user_id"],"drop":["user_id"]}"#,
            "more than one rule",
        ),
        (r#"{"algorithm":"md5"}"#, "unknown variant `md5`"),
    ];
    for (cfg, want) in bad {
        let err = PiiHash::configure(&setup(cfg, Some(KEY)))
            .err()
            .unwrap()
            .describe();
        assert!(err.contains(want), "{cfg}: {err}");
    }
}

proptest! {
    #[test]
    fn hash_is_deterministic_and_depends_on_the_key(
        value in ".{0,40}",
        k1 in proptest::collection::vec(any::<u8>(), 16..48),
        k2 in proptest::collection::vec(any::<u8>(), 16..48),
    ) {
        for alg in [Algorithm::HmacSha256, Algorithm::Blake3] {
            let a = KeyedHash::new(alg, &k1, 16);
            prop_assert_eq!(a.hash_hex(value.as_bytes()), a.hash_hex(value.as_bytes()));
            if k1 != k2 {
                let b = KeyedHash::new(alg, &k2, 16);
                prop_assert_ne!(a.hash_hex(value.as_bytes()), b.hash_hex(value.as_bytes()));
            }
        }
    }

    #[test]
    fn every_row_gets_its_own_values_hash_when_values_repeat(
        picks in proptest::collection::vec(0usize..3, 1..40),
    ) {
        let ids = ["alice", "bob", ""];
        let users: Vec<Option<&str>> = picks.iter().map(|&i| Some(ids[i])).collect();
        let ips: Vec<Option<&str>> = picks.iter().map(|_| None).collect();
        let (mut p, _) =
            PiiHash::configure(&setup(r#"{"hash":["user_id"]}"#, Some(KEY))).unwrap();
        let out = p.transform(batch(&users, &ips)).unwrap();
        let hashed = out.text("user_id").unwrap();
        let h = KeyedHash::new(Algorithm::HmacSha256, KEY, 16);
        for (row, &i) in picks.iter().enumerate() {
            let want = h.hash_hex(ids[i].as_bytes());
            prop_assert_eq!(hashed.get(row), Some(want.as_str()));
        }
    }

    #[test]
    fn truncated_ipv4_reads_like_the_standard_formatting(octets in any::<[u8; 4]>()) {
        let text = std::net::Ipv4Addr::from(octets).to_string();
        let (mut p, _) =
            PiiHash::configure(&setup(r#"{"truncate_ip":["ip"]}"#, Some(KEY))).unwrap();
        let out = p.transform(batch(&[None], &[Some(text.as_str())])).unwrap();
        let want = std::net::Ipv4Addr::from([octets[0], octets[1], octets[2], 0]).to_string();
        prop_assert_eq!(out.text("ip").unwrap().get(0), Some(want.as_str()));
    }
}

#[test]
fn prefix_keeps_the_first_characters_and_nulls() {
    let cfg = r#"{"prefix": {"country": 1, "event_id": 0}}"#;
    let (mut p, _) = PiiHash::configure(&setup(cfg, Some(KEY))).unwrap();
    let out = p
        .transform(batch(&[Some("a"), None], &[None, None]))
        .unwrap();
    let c = out.text("country").unwrap();
    assert_eq!((c.get(0), c.get(1)), (Some("U"), Some("K")));
    assert_eq!(out.text("event_id").unwrap().get(1), Some(""));
    let both = r#"{"prefix": {"user_id": 2}, "hash": ["user_id"]}"#;
    let e = PiiHash::configure(&setup(both, Some(KEY)))
        .err()
        .unwrap()
        .describe();
    assert!(
        e.contains("`user_id` is named by more than one rule"),
        "{e}"
    );
}
