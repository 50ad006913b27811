//! perms:list, create, delete: an app's collaborators, or with `--admin` the administrators.

use serde_json::json;

use super::Session;
use crate::cli::AppFlag;
use crate::error::CliError;

pub(crate) fn list(s: &Session, flag: &AppFlag, admin: bool) -> Result<i32, CliError> {
    let mut users: Vec<String> = if admin {
        let (results, _) = s.client.list("/v1/admin/perms/", None)?;
        results
            .iter()
            .filter_map(|u| u["username"].as_str().map(str::to_owned))
            .collect()
    } else {
        let app = s.app(flag);
        let reply = s.client.get(&format!("/v1/apps/{app}/perms/"))?.json();
        reply["users"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    users.sort();
    if admin {
        println!("=== Administrators");
    } else {
        println!("=== {}'s Users", s.app(flag));
    }
    for u in users {
        println!("{u}");
    }
    Ok(0)
}

pub(crate) fn change(
    s: &Session,
    flag: &AppFlag,
    admin: bool,
    user: &str,
    add: bool,
) -> Result<i32, CliError> {
    let (collection, target) = if admin {
        (
            "/v1/admin/perms/".to_owned(),
            "system administrators".to_owned(),
        )
    } else {
        let app = s.app(flag);
        (
            format!("/v1/apps/{app}/perms/"),
            format!("{app} collaborators"),
        )
    };
    if add {
        print!("Adding {user} to {target}... ");
        s.client.post(&collection, &json!({"username": user}))?;
    } else {
        print!("Removing {user} from {target}... ");
        s.client.delete(&format!("{collection}{user}/"))?;
    }
    println!("done");
    Ok(0)
}
