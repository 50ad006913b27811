//! Property tests for what a stranger sends the controller: config values, SSH public keys,
//! custom domains, certificates and image references of any shape are judged without a panic,
//! and what is accepted is well formed.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::domain::{config, image, validate};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 20, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("\\PC{0,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_config_request_is_judged(fields in proptest::collection::btree_map(
        prop_oneof![Just("values".to_owned()), Just("memory".to_owned()), Just("cpu".to_owned()), Just("tags".to_owned()), "[a-z]{1,8}"],
        json_value(),
        0..5,
    )) {
        let body: Map<String, Value> = fields.into_iter().collect();
        if let Ok(changes) = config::parse_change(&body) {
            for (field, values) in changes {
                for (key, value) in values {
                    prop_assert!(!key.is_empty() || field == "values");
                    prop_assert!(value.is_null() || value.is_string() || value.is_number());
                }
            }
        }
    }

    #[test]
    fn any_public_key_is_judged(line in "\\PC{0,300}") {
        if let Ok(fingerprint) = validate::key_fingerprint(&line) {
            prop_assert_eq!(fingerprint.len(), 47);
        }
    }

    #[test]
    fn any_domain_is_judged(name in "\\PC{0,300}") {
        if let Ok(domain) = validate::domain(&name) {
            prop_assert_eq!(domain.clone(), domain.to_ascii_lowercase());
            prop_assert!(domain.len() <= 255 && !domain.ends_with('.'));
        }
    }

    #[test]
    fn any_certificate_text_is_judged(pem in "(-----BEGIN CERTIFICATE-----\\n)?[A-Za-z0-9+/=\\n]{0,400}(-----END CERTIFICATE-----\\n)?") {
        let _ = validate::certificate(&pem);
        let _ = validate::key_matches(&pem, &pem);
    }

    #[test]
    fn any_image_reference_is_judged(reference in "\\PC{0,300}") {
        let _ = image::check(&reference, "shop");
    }
}
