//! The command line: the Deis v1 client's `<group>:<command>` names, its shortcuts (`create`,
//! `login`, `scale`, `rollback`, `pull`, ...) and bare group names running their list.

use clap::{Args, Parser, Subcommand};

/// The Deis command-line client.
#[derive(Debug, Parser)]
#[command(name = "deis", version = crate::client::CLIENT_VERSION, about, disable_help_subcommand = true)]
pub(crate) struct Cli {
    /// Print JSON instead of text (list and info commands), for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `-a/--app`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct AppFlag {
    /// The app (default: from the `deis` git remote, else the directory name).
    #[arg(short = 'a', long = "app")]
    pub(crate) app: Option<String>,
}

/// `-l/--limit`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct Limit {
    /// How many items to list.
    #[arg(short = 'l', long = "limit")]
    pub(crate) limit: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Registers a new user with a controller.
    #[command(name = "auth:register", visible_alias = "register")]
    Register {
        controller: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long = "ssl-verify", default_value_t = false)]
        ssl_verify: bool,
    },
    /// Logs in to a controller.
    #[command(name = "auth:login", visible_alias = "login")]
    Login {
        controller: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password: Option<String>,
        #[arg(long = "ssl-verify", default_value_t = false)]
        ssl_verify: bool,
    },
    /// Logs out.
    #[command(name = "auth:logout", visible_alias = "logout")]
    Logout,
    /// Says who you are and where.
    #[command(name = "auth:whoami", visible_alias = "whoami")]
    Whoami,
    /// Changes your password.
    #[command(name = "auth:passwd", visible_alias = "passwd")]
    Passwd {
        #[arg(long)]
        password: Option<String>,
        #[arg(long = "new-password")]
        new_password: Option<String>,
    },
    /// Cancels an account (yours, or another's as an administrator).
    #[command(name = "auth:cancel")]
    Cancel {
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Issues a new API token (yours, another user's, or everyone's).
    #[command(name = "auth:regenerate")]
    Regenerate {
        #[arg(short = 'u', long = "username")]
        username: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Creates an app.
    #[command(name = "apps:create", visible_alias = "create")]
    AppsCreate {
        id: Option<String>,
        /// Do not add a git remote.
        #[arg(long = "no-remote")]
        no_remote: bool,
        /// The remote's name.
        #[arg(short = 'r', long = "remote", default_value = "deis")]
        remote: String,
        /// A buildpack URL (sets BUILDPACK_URL).
        #[arg(short = 'b', long = "buildpack")]
        buildpack: Option<String>,
    },
    /// Lists apps.
    #[command(name = "apps:list", visible_alias = "apps")]
    AppsList(Limit),
    /// Shows an app.
    #[command(name = "apps:info", visible_alias = "info")]
    AppsInfo(AppFlag),
    /// Destroys an app.
    #[command(name = "apps:destroy", visible_alias = "destroy")]
    AppsDestroy {
        #[command(flatten)]
        app: AppFlag,
        /// The app's name, to skip the question.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Gives an app to another user.
    #[command(name = "apps:transfer")]
    AppsTransfer {
        user: String,
        #[command(flatten)]
        app: AppFlag,
    },
    /// Opens the app's URL in a browser.
    #[command(name = "apps:open", visible_alias = "open")]
    AppsOpen(AppFlag),
    /// Runs a command in a one-off container.
    #[command(name = "apps:run", visible_alias = "run")]
    AppsRun {
        #[command(flatten)]
        app: AppFlag,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Shows the app's log.
    #[command(name = "apps:logs", visible_alias = "logs")]
    AppsLogs {
        #[command(flatten)]
        app: AppFlag,
        /// How many lines.
        #[arg(short = 'n', long = "lines")]
        lines: Option<u32>,
        /// Follow the log live.
        #[arg(short = 'f', long = "follow")]
        follow: bool,
    },
    /// Lists the app's config.
    #[command(name = "config:list", visible_alias = "config")]
    ConfigList {
        #[command(flatten)]
        app: AppFlag,
        /// One line, `K=V` pairs.
        #[arg(long)]
        oneline: bool,
    },
    /// Sets config values (`KEY=value`).
    #[command(name = "config:set")]
    ConfigSet {
        #[command(flatten)]
        app: AppFlag,
        #[arg(required = true)]
        values: Vec<String>,
    },
    /// Unsets config values.
    #[command(name = "config:unset")]
    ConfigUnset {
        #[command(flatten)]
        app: AppFlag,
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Writes the app's config to `.env`.
    #[command(name = "config:pull")]
    ConfigPull {
        #[command(flatten)]
        app: AppFlag,
        /// Ask before changing each differing value.
        #[arg(short = 'i', long = "interactive")]
        interactive: bool,
        /// Overwrite an existing `.env`.
        #[arg(short = 'o', long = "overwrite")]
        overwrite: bool,
    },
    /// Sets the app's config from `.env` (or another file of `KEY=value` lines).
    #[command(name = "config:push")]
    ConfigPush {
        #[command(flatten)]
        app: AppFlag,
        #[arg(short = 'p', long = "path", default_value = ".env")]
        path: String,
    },
    /// Lists TLS certificates.
    #[command(name = "certs:list", visible_alias = "certs")]
    CertsList(Limit),
    /// Adds a TLS certificate for a custom domain.
    #[command(name = "certs:add")]
    CertsAdd {
        cert: String,
        key: String,
        #[arg(long = "common-name")]
        common_name: Option<String>,
        #[arg(long = "subject-alt-names", value_delimiter = ',')]
        subject_alt_names: Vec<String>,
    },
    /// Removes a TLS certificate.
    #[command(name = "certs:remove")]
    CertsRemove { common_name: String },
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Lists releases.
    #[command(name = "releases:list", visible_alias = "releases")]
    ReleasesList {
        #[command(flatten)]
        app: AppFlag,
        #[command(flatten)]
        limit: Limit,
    },
    /// Shows a release.
    #[command(name = "releases:info")]
    ReleasesInfo {
        version: String,
        #[command(flatten)]
        app: AppFlag,
    },
    /// Rolls back to a release (default: the one before the current).
    #[command(name = "releases:rollback", visible_alias = "rollback")]
    ReleasesRollback {
        version: Option<String>,
        #[command(flatten)]
        app: AppFlag,
    },
    /// Lists the app's processes.
    #[command(name = "ps:list", visible_alias = "ps")]
    PsList(AppFlag),
    /// Scales process types (`web=3`).
    #[command(name = "ps:scale", visible_alias = "scale")]
    PsScale {
        #[arg(required = true)]
        types: Vec<String>,
        #[command(flatten)]
        app: AppFlag,
    },
    /// Restarts processes (all, a type, or `type.num`).
    #[command(name = "ps:restart")]
    PsRestart {
        target: Option<String>,
        #[command(flatten)]
        app: AppFlag,
    },
    /// Lists the app's domains.
    #[command(name = "domains:list", visible_alias = "domains")]
    DomainsList(AppFlag),
    /// Adds a domain.
    #[command(name = "domains:add")]
    DomainsAdd {
        domain: String,
        #[command(flatten)]
        app: AppFlag,
    },
    /// Removes a domain.
    #[command(name = "domains:remove")]
    DomainsRemove {
        domain: String,
        #[command(flatten)]
        app: AppFlag,
    },
    /// Lists your SSH keys.
    #[command(name = "keys:list", visible_alias = "keys")]
    KeysList(Limit),
    /// Adds an SSH public key.
    #[command(name = "keys:add")]
    KeysAdd { path: Option<String> },
    /// Removes an SSH key.
    #[command(name = "keys:remove")]
    KeysRemove { id: String },
    /// Lists collaborators (or administrators).
    #[command(name = "perms:list", visible_aliases = ["perms", "sharing", "sharing:list"])]
    PermsList {
        #[command(flatten)]
        app: AppFlag,
        #[arg(long)]
        admin: bool,
    },
    /// Adds a collaborator (or an administrator).
    #[command(name = "perms:create", visible_alias = "sharing:add")]
    PermsCreate {
        user: String,
        #[command(flatten)]
        app: AppFlag,
        #[arg(long)]
        admin: bool,
    },
    /// Removes a collaborator (or an administrator).
    #[command(name = "perms:delete", visible_alias = "sharing:remove")]
    PermsDelete {
        user: String,
        #[command(flatten)]
        app: AppFlag,
        #[arg(long)]
        admin: bool,
    },
    /// Lists the app's memory and CPU limits.
    #[command(name = "limits:list", visible_alias = "limits")]
    LimitsList(AppFlag),
    /// Sets limits (`web=512M`; `-c` for CPU shares).
    #[command(name = "limits:set")]
    LimitsSet {
        #[command(flatten)]
        app: AppFlag,
        #[arg(short = 'c', long = "cpu")]
        cpu: bool,
        #[arg(short = 'm', long = "memory")]
        memory: bool,
        #[arg(required = true)]
        values: Vec<String>,
    },
    /// Unsets limits.
    #[command(name = "limits:unset")]
    LimitsUnset {
        #[command(flatten)]
        app: AppFlag,
        #[arg(short = 'c', long = "cpu")]
        cpu: bool,
        #[arg(short = 'm', long = "memory")]
        memory: bool,
        #[arg(required = true)]
        types: Vec<String>,
    },
    /// Lists the app's tags.
    #[command(name = "tags:list", visible_alias = "tags")]
    TagsList(AppFlag),
    /// Sets tags (`key=value`).
    #[command(name = "tags:set")]
    TagsSet {
        #[command(flatten)]
        app: AppFlag,
        #[arg(required = true)]
        values: Vec<String>,
    },
    /// Unsets tags.
    #[command(name = "tags:unset")]
    TagsUnset {
        #[command(flatten)]
        app: AppFlag,
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Lists builds.
    #[command(name = "builds:list", visible_alias = "builds")]
    BuildsList {
        #[command(flatten)]
        app: AppFlag,
        #[command(flatten)]
        limit: Limit,
    },
    /// Deploys an image (`deis pull <image>`).
    #[command(name = "builds:create", visible_alias = "pull")]
    BuildsCreate {
        image: String,
        #[command(flatten)]
        app: AppFlag,
        /// A Procfile as YAML (default: ./Procfile if present).
        #[arg(short = 'p', long = "procfile")]
        procfile: Option<String>,
    },
    /// Lists users (administrators only).
    #[command(name = "users:list", visible_alias = "users")]
    UsersList(Limit),
    /// Adds the `deis` git remote for an app.
    #[command(name = "git:remote")]
    GitRemote {
        #[command(flatten)]
        app: AppFlag,
        #[arg(short = 'r', long = "remote", default_value = "deis")]
        remote: String,
    },
    /// Prints the client's version.
    Version,
}
