//! The key schema in ARCHITECTURE.md and `deis_store::keys` agree: every documented key parses.

use deis_store::keys::Key;

const SAMPLES: [(&str, &str); 9] = [
    ("<app>", "myapp"),
    ("<container>", "myapp_v2.web.1"),
    ("<key>", "deis_whitelist"),
    ("<domain>", "www.example.com"),
    ("<cn>", "www.example.com"),
    ("<user>", "alice"),
    (
        "<fingerprint>",
        "88:25:ed:67:56:91:3d:c6:1b:7f:42:c6:9b:41:24:80",
    ),
    ("<host>", "10.0.0.1"),
    ("<setting>", "hsts/maxAge"),
];

/// `/a/{b,c}` → `/a/b`, `/a/c` (one brace group at most).
fn expand(pattern: &str) -> Vec<String> {
    match (pattern.find('{'), pattern.find('}')) {
        (Some(open), Some(close)) if open < close => pattern[open + 1..close]
            .split(',')
            .map(|alt| format!("{}{alt}{}", &pattern[..open], &pattern[close + 1..]))
            .collect(),
        _ => vec![pattern.to_owned()],
    }
}

fn documented_keys() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ARCHITECTURE.md");
    let doc = std::fs::read_to_string(path).expect("ARCHITECTURE.md is readable");
    let section = doc
        .split("\n## The key schema")
        .nth(1)
        .expect("ARCHITECTURE.md has a key schema section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .flat_map(expand)
        .collect()
}

#[test]
fn every_documented_key_parses() {
    let keys = documented_keys();
    assert!(keys.len() >= 30, "the table was found: {keys:?}");
    for pattern in keys {
        let mut path = pattern.clone();
        for (placeholder, sample) in SAMPLES {
            path = path.replace(placeholder, sample);
        }
        assert!(!path.contains('<'), "{pattern}: unknown placeholder");
        let key = Key::parse(&path).unwrap_or_else(|e| panic!("{pattern} is documented but {e}"));
        assert_eq!(key.path(), path);
    }
}

#[test]
fn routes_and_apps_parse_to_their_typed_forms() {
    let route = Key::parse("/deis/services/myapp/myapp_v2.web.1").expect("a route");
    let Key::Route(container) = route else {
        panic!("not a route: {route:?}")
    };
    assert_eq!(container.app.as_str(), "myapp");
    assert_eq!(container.num, 1);
    assert!(matches!(
        Key::parse("/deis/services/myapp"),
        Ok(Key::App(_))
    ));
}
