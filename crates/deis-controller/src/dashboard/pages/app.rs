//! An app's page: its URL, processes per type (scale, restart), releases (roll back), config
//! vars, limits and tags, domains and certificates, collaborators, and the log; each section
//! with its forms and the error of the last one that failed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::apps::{app_url, processes};
use super::form::Problem;
use crate::dashboard::Dash;
use crate::dashboard::rest::{Client, Reply, Via, app_path, encode};
use crate::dashboard::session::Signed;
use crate::dashboard::view::{alert, csrf_field, error_page, layout, not_a_name, respond};

/// What the app page shows, read through the API.
struct Data {
    app: Value,
    containers: Reply,
    releases: Reply,
    config: Reply,
    domains: Reply,
    certs: Reply,
    perms: Reply,
    logs: Reply,
}

/// Reads what the page shows of the app at `base` (`/v1/apps/{app}`).
async fn load(api: &Client, base: &str) -> Result<Data, Reply> {
    let get = |path: String| async move { api.get(&path).await };
    let app = get(base.to_owned()).await;
    if !app.ok() {
        return Err(app);
    }
    let (containers, releases, config, domains, certs, perms, logs) = tokio::join!(
        get(format!("{base}/containers")),
        get(format!("{base}/releases?page_size=20")),
        get(format!("{base}/config")),
        get(format!("{base}/domains")),
        get("/v1/certs".to_owned()),
        get(format!("{base}/perms")),
        get(format!("{base}/logs?log_lines=100")),
    );
    Ok(Data {
        app: app.json,
        containers,
        releases,
        config,
        domains,
        certs,
        perms,
        logs,
    })
}

/// The app page, with `problem` shown in its section and answered with `status`.
pub(crate) async fn render(
    dash: &Dash,
    signed: &Signed,
    via: &Via,
    id: &str,
    problem: Option<Problem>,
    status: StatusCode,
) -> Response {
    let base = match app_path(id) {
        Ok(base) => base,
        Err(bad) => return not_a_name(&bad, &signed.viewer()),
    };
    let data = match load(&dash.client(signed, via), &base).await {
        Ok(d) => d,
        Err(reply) => return error_page(reply.status, &reply.error(), Some(&signed.viewer())),
    };
    let error = |section: &str| {
        problem
            .as_ref()
            .filter(|p| p.section == section)
            .map(|p| p.message.as_str())
    };
    let form = Form {
        csrf: &signed.csrf,
        app: id,
    };
    let body = html! {
        h1 { (id) }
        p class="meta" {
            "URL: " a id="app-url" href=(app_url(&data.app)) { (data.app["url"].as_str().unwrap_or_default()) }
            " · owner " (data.app["owner"].as_str().unwrap_or_default())
        }
        (deploy(&form, error("deploy")))
        (process_section(&form, &data, error("processes")))
        (releases(&form, &data.releases, error("releases")))
        (config(&form, &data.config, error("config")))
        (limits(&form, &data.config, error("limits")))
        (domains(&form, &data, error("domains")))
        (collaborators(&form, &data.perms, error("collaborators")))
        (logs(&data.logs))
    };
    respond(status, layout(id, Some(&signed.viewer()), Some(id), body))
}

pub(crate) async fn show(
    State(dash): State<Dash>,
    signed: Signed,
    via: Via,
    Path(id): Path<String>,
) -> Response {
    render(&dash, &signed, &via, &id, None, StatusCode::OK).await
}

/// What each form of the page needs: its action's URL and the CSRF token.
struct Form<'a> {
    csrf: &'a str,
    app: &'a str,
}

impl Form<'_> {
    /// A form that posts `action` for this app, with `fields` inside.
    fn post(&self, action: &str, class: &str, fields: Markup) -> Markup {
        html! {
            form class=(class) method="post" action={ "/apps/" (encode(self.app)) "/" (action) } {
                (csrf_field(self.csrf))
                (fields)
            }
        }
    }
}

fn deploy(form: &Form<'_>, error: Option<&str>) -> Markup {
    html! {
        section id="deploy" aria-labelledby="deploy-heading" {
            h2 id="deploy-heading" { "Deploy an image" }
            (alert(error))
            (form.post("deploy", "inline", html! {
                label for="image" { "Image (as for deis pull)" }
                input id="image" name="image" type="text" required maxlength="512";
                button type="submit" { "Deploy" }
            }))
        }
    }
}

/// The processes as they are (a count per type, then each with its state and release): what
/// the live script replaces as they change.
pub(crate) fn process_list(structure: &Value, containers: &[Value]) -> Markup {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for c in containers {
        *counts
            .entry(c["type"].as_str().unwrap_or_default())
            .or_default() += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(t, n)| format!("{t}={n}")).collect();
    html! {
        p class="summary" { "Wanted: " (processes(structure)) }
        p class="summary" {
            "Running: "
            @if summary.is_empty() { "none" } @else { (summary.join(" ")) }
        }
        ul id="ps-list" {
            @for c in containers {
                @let name = format!("{}.{}", c["type"].as_str().unwrap_or_default(), c["num"]);
                li class="process" data-state=(c["state"].as_str().unwrap_or_default()) {
                    span class="name" { (name) } " "
                    span class="state" { (c["state"].as_str().unwrap_or_default()) } " "
                    span class="release" { "(" (c["release"].as_str().unwrap_or_default()) ")" }
                }
            }
        }
    }
}

fn process_section(form: &Form<'_>, data: &Data, error: Option<&str>) -> Markup {
    let structure = data.app["structure"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    html! {
        section id="processes" aria-labelledby="processes-heading" {
            h2 id="processes-heading" { "Processes" }
            (alert(error))
            @for (ptype, count) in &structure {
                div class="ptype" {
                    (form.post("scale", "inline", html! {
                        input type="hidden" name="type" value=(ptype);
                        label for={ "scale-" (ptype) } { "Number of " (ptype) " processes" }
                        input id={ "scale-" (ptype) } name="count" type="number" min="0" max="1000" required value=(count.as_i64().unwrap_or(0));
                        button type="submit" { "Scale " (ptype) }
                    }))
                    (form.post("restart", "inline", html! {
                        input type="hidden" name="type" value=(ptype);
                        button type="submit" { "Restart " (ptype) }
                    }))
                }
            }
            div id="ps-live" aria-live="polite" { (process_list(&data.app["structure"], data.containers.results())) }
        }
    }
}

fn releases(form: &Form<'_>, releases: &Reply, error: Option<&str>) -> Markup {
    let rows = releases.results();
    let current = rows.first().and_then(|r| r["version"].as_i64());
    html! {
        section id="releases" aria-labelledby="releases-heading" {
            h2 id="releases-heading" { "Releases" }
            (alert(error))
            div class="scroll" {
                table {
                    thead { tr { th scope="col" { "Version" } th scope="col" { "Summary" } th scope="col" { "Created" } th scope="col" { span class="sr" { "Actions" } } } }
                    tbody {
                        @for r in rows {
                            @let v = r["version"].as_i64().unwrap_or(0);
                            tr {
                                th scope="row" { "v" (v) }
                                td { (r["summary"].as_str().unwrap_or_default()) }
                                td { (r["created"].as_str().unwrap_or_default()) }
                                td {
                                    @if Some(v) != current && v > 1 {
                                        (form.post("rollback", "inline", html! {
                                            input type="hidden" name="version" value=(v);
                                            button type="submit" { "Roll back to v" (v) }
                                        }))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A key/value table with a remove button per row, posting `action` with `field`.
fn pairs(form: &Form<'_>, map: &Value, action: &str, extra: Option<(&str, &str)>) -> Markup {
    let entries = map.as_object().cloned().unwrap_or_default();
    html! {
        @if entries.is_empty() {
            p { "None set." }
        } @else {
            div class="scroll" {
                table {
                    tbody {
                        @for (k, v) in &entries {
                            tr {
                                th scope="row" { (k) }
                                td { code { (v.as_str().map_or_else(|| v.to_string(), str::to_owned)) } }
                                td {
                                    (form.post(action, "inline", html! {
                                        @if let Some((name, value)) = extra {
                                            input type="hidden" name=(name) value=(value);
                                        }
                                        input type="hidden" name="key" value=(k);
                                        input type="hidden" name="unset" value="1";
                                        button type="submit" aria-label={ "Remove " (k) } { "Remove" }
                                    }))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn config(form: &Form<'_>, config: &Reply, error: Option<&str>) -> Markup {
    html! {
        section id="config" aria-labelledby="config-heading" {
            h2 id="config-heading" { "Config vars" }
            (alert(error))
            (pairs(form, &config.json["values"], "config", None))
            (form.post("config", "inline", html! {
                label for="config-key" { "Name" }
                input id="config-key" name="key" type="text" required maxlength="256";
                label for="config-value" { "Value" }
                input id="config-value" name="value" type="text" maxlength="65536";
                button type="submit" { "Set" }
            }))
        }
    }
}

fn limits(form: &Form<'_>, config: &Reply, error: Option<&str>) -> Markup {
    html! {
        section id="limits" aria-labelledby="limits-heading" {
            h2 id="limits-heading" { "Limits and tags" }
            (alert(error))
            h3 { "Memory" }
            (pairs(form, &config.json["memory"], "limits", Some(("kind", "memory"))))
            h3 { "CPU shares" }
            (pairs(form, &config.json["cpu"], "limits", Some(("kind", "cpu"))))
            h3 { "Tags" }
            (pairs(form, &config.json["tags"], "limits", Some(("kind", "tags"))))
            (form.post("limits", "inline", html! {
                label for="limit-kind" { "What" }
                select id="limit-kind" name="kind" {
                    option value="memory" { "Memory (e.g. 256M)" }
                    option value="cpu" { "CPU shares" }
                    option value="tags" { "Tag" }
                }
                label for="limit-key" { "Process type or tag" }
                input id="limit-key" name="key" type="text" required maxlength="256";
                label for="limit-value" { "Value" }
                input id="limit-value" name="value" type="text" required maxlength="256";
                button type="submit" { "Set" }
            }))
        }
    }
}

fn domains(form: &Form<'_>, data: &Data, error: Option<&str>) -> Markup {
    let names: Vec<&str> = data
        .domains
        .results()
        .iter()
        .filter_map(|d| d["domain"].as_str())
        .collect();
    let certs: Vec<&Value> = data
        .certs
        .results()
        .iter()
        .filter(|c| {
            c["common_name"]
                .as_str()
                .is_some_and(|cn| names.contains(&cn))
        })
        .collect();
    html! {
        section id="domains" aria-labelledby="domains-heading" {
            h2 id="domains-heading" { "Domains and certificates" }
            (alert(error))
            ul id="domain-list" {
                @for d in &names {
                    li {
                        (d) " "
                        (form.post("domain-remove", "inline", html! {
                            input type="hidden" name="domain" value=(d);
                            button type="submit" aria-label={ "Remove " (d) } { "Remove" }
                        }))
                    }
                }
            }
            (form.post("domain-add", "inline", html! {
                label for="domain" { "Domain" }
                input id="domain" name="domain" type="text" required maxlength="253";
                button type="submit" { "Add domain" }
            }))
            h3 { "Certificates" }
            ul id="cert-list" {
                @for c in &certs {
                    @let cn = c["common_name"].as_str().unwrap_or_default();
                    li {
                        (cn) " (expires " (c["expires"].as_str().unwrap_or_default()) ") "
                        (form.post("cert-remove", "inline", html! {
                            input type="hidden" name="common_name" value=(cn);
                            button type="submit" aria-label={ "Remove the certificate of " (cn) } { "Remove" }
                        }))
                    }
                }
            }
            (form.post("cert-add", "stack", html! {
                label for="cert" { "Certificate (PEM)" }
                textarea id="cert" name="certificate" rows="4" required {}
                label for="cert-key" { "Private key (PEM)" }
                textarea id="cert-key" name="key" rows="4" required {}
                button type="submit" { "Add certificate" }
            }))
        }
    }
}

fn collaborators(form: &Form<'_>, perms: &Reply, error: Option<&str>) -> Markup {
    let users: Vec<&str> = perms.json["users"]
        .as_array()
        .map(|u| u.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        section id="collaborators" aria-labelledby="collaborators-heading" {
            h2 id="collaborators-heading" { "Collaborators" }
            (alert(error))
            ul id="collaborator-list" {
                @for u in &users {
                    li {
                        (u) " "
                        (form.post("perm-remove", "inline", html! {
                            input type="hidden" name="username" value=(u);
                            button type="submit" aria-label={ "Remove " (u) } { "Remove" }
                        }))
                    }
                }
            }
            (form.post("perm-add", "inline", html! {
                label for="collaborator" { "Username" }
                input id="collaborator" name="username" type="text" required maxlength="150";
                button type="submit" { "Add collaborator" }
            }))
        }
    }
}

fn logs(logs: &Reply) -> Markup {
    let text = if logs.status == StatusCode::OK {
        logs.text.clone()
    } else if logs.ok() {
        String::new()
    } else {
        logs.error()
    };
    html! {
        section id="logs" aria-labelledby="logs-heading" {
            h2 id="logs-heading" { "Log" }
            p class="note" { "The last 100 lines; with JavaScript, new lines appear as they arrive." }
            pre id="log" role="log" tabindex="0" { (text) }
        }
    }
}
