//! Generated app names: `<adjective>-<noun>`, six and eight letters, as Deis made them.

use rand::seq::IndexedRandom;

const ADJECTIVES: [&str; 32] = [
    "amazed", "bright", "breezy", "bubbly", "chilly", "classy", "clever", "cosmic", "dapper",
    "dreamy", "frisky", "frosty", "gentle", "glossy", "golden", "groovy", "humble", "jovial",
    "lively", "lovely", "mellow", "modest", "nimble", "peachy", "plucky", "polite", "quirky",
    "rustic", "snappy", "stormy", "sunlit", "velvet",
];

const NOUNS: [&str; 32] = [
    "aardvark",
    "albatross",
    "anteater",
    "bluebird",
    "bobolink",
    "buttress",
    "chipmunk",
    "cornflower",
    "crawfish",
    "daffodil",
    "dewdrops",
    "doorbell",
    "dragonfly",
    "eggplant",
    "firework",
    "flamingo",
    "gemstone",
    "goldfish",
    "hedgehog",
    "huntress",
    "jellybean",
    "kingfish",
    "lemonade",
    "lighthouse",
    "magnolia",
    "mandolin",
    "nightjar",
    "seahorse",
    "sunflower",
    "teaspoon",
    "waxworks",
    "windmill",
];

/// A random name (which may be taken: the caller retries).
pub(crate) fn generate() -> String {
    let mut rng = rand::rng();
    let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("peachy");
    let noun = NOUNS.choose(&mut rng).copied().unwrap_or("waxworks");
    format!("{adjective}-{noun}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_valid_app_ids() {
        for _ in 0..50 {
            let name = super::generate();
            assert!(name.parse::<deis_types::AppName>().is_ok(), "{name}");
            assert!(name.contains('-'));
        }
    }
}
