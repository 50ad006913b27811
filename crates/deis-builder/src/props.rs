//! Property tests for what a stranger sends the builder: any SSH `exec` command is parsed
//! without a panic, and accepted only as git's commands on a valid app name; any Procfile or
//! buildpack release text gives only well-formed process types.

use proptest::prelude::*;

use crate::build::procfile::{parse_procfile, release_process_types};
use crate::command::{Command, parse};

proptest! {
    #[test]
    fn any_ssh_command_is_parsed_or_refused(raw in "\\PC{0,400}") {
        match parse(&raw) {
            Ok(Command::Ping) => prop_assert_eq!(raw.trim(), "ping"),
            Ok(Command::ReceivePack(app) | Command::UploadPack(app)) => {
                prop_assert!(raw.trim_start().starts_with("git"));
                prop_assert!(!app.is_empty() && app.len() <= 63);
                prop_assert!(app.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
            Err(refused) => prop_assert!(refused.to_string().len() < 300),
        }
    }

    #[test]
    fn git_push_of_any_valid_app_is_understood(app in "[a-z0-9][a-z0-9-]{0,40}") {
        prop_assert_eq!(
            parse(&format!("git-receive-pack '/{app}.git'")),
            Ok(Command::ReceivePack(app))
        );
    }

    #[test]
    fn any_procfile_gives_well_formed_types(text in "\\PC{0,500}(\\n\\PC{0,80}){0,20}") {
        for types in [parse_procfile(&text), release_process_types(&text)] {
            for (name, command) in types {
                prop_assert!(!name.is_empty() && !command.is_empty());
                prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
                prop_assert!(!name.contains('\n') && !command.contains('\n'));
            }
        }
    }
}
