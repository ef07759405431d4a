//! `ftw check` on valid manifests: one line per tool, exit codes, unreadable files.

use crate::support::{HASH_A, HASH_B, Test};

#[test]
fn valid_manifest_lists_each_tool_with_its_args_and_who_may_run_it() {
    let manifest = format!(
        r#"
[auth.users]
alice = {{ password = "{HASH_A}", groups = ["ops"] }}
bob = "{HASH_B}"

[tools.backup]
command = ["/bin/echo", "{{db}}", "{{gzip}}"]
allow = ["alice", "@ops"]

[tools.backup.args.db]
type = "select"
options = ["prod", "staging"]

[tools.backup.args.gzip]
type = "bool"
flag = "--gzip"

[tools.hello]
command = ["/bin/echo", "hello"]

[tools.nobody]
command = ["/bin/true"]
allow = []
"#
    );
    let out = Test::new()
        .manifest(&manifest)
        .args(&["check", "tools.toml"])
        .run();
    out.success().stdout_is(
        "backup  2 args    alice, @ops\n\
         hello   0 args    every signed-in user\n\
         nobody  0 args    nobody (allow = [])\n",
    );
    out.stderr_has("warning: `allow` is empty: nobody can run `nobody`");
}

#[test]
fn missing_manifest_is_a_usage_error() {
    Test::new()
        .args(&["check", "nope.toml"])
        .run()
        .code(2)
        .stderr_is("error: cannot read the manifest nope.toml: No such file or directory\n");
}

#[test]
fn no_arguments_is_a_usage_error() {
    Test::new()
        .args(&["check"])
        .run()
        .code(2)
        .stderr_has("<MANIFEST>");
}

#[test]
fn unknown_subcommand_suggests_one() {
    Test::new()
        .args(&["chek"])
        .run()
        .code(2)
        .stderr_has("tip: a similar subcommand exists: 'check'");
}

#[test]
fn serve_validates_the_manifest_first() {
    Test::new()
        .manifest("[tools.t]\ncommand = [\"/bin/echo\"]\ntiemout = \"1m\"\n")
        .args(&["serve", "tools.toml", "--port", "0"])
        .run()
        .code(2)
        .stderr_has("tools.toml:3:1: error: unknown key `tiemout` in [tools.t]");
}

#[test]
fn a_proxy_without_allowed_hosts_is_warned_about() {
    let manifest = "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n\n[auth]\ntrusted_header = \"Remote-User\"\n\n[tools.t]\ncommand = [\"/bin/true\"]\n";
    let out = Test::new()
        .manifest(manifest)
        .args(&["check", "tools.toml"])
        .run();
    out.success();
    out.stderr_has("warning: with a proxy in front, ftw answers only to its own names");
    out.stderr_has("allowed_hosts = [\"tools.example.com\"]");
    let named = manifest.replace(
        "trusted_proxies = [\"127.0.0.1\"]\n",
        "trusted_proxies = [\"127.0.0.1\"]\nallowed_hosts = [\"tools.example.com\"]\n",
    );
    let out = Test::new()
        .manifest(&named)
        .args(&["check", "tools.toml"])
        .run();
    out.success();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn an_oidc_provider_is_checked_offline_and_its_redirect_url_is_shown() {
    let out = Test::new()
        .manifest(
            r#"
[auth.oidc.corp]
issuer = "https://sso.example.com/realms/team"
client_id = "ftw"
client_secret_file = "corp.secret"
allowed_domains = ["example.com"]

[tools.hello]
command = ["/bin/echo", "hello"]
allow = ["@anyone-the-provider-names"]
"#,
        )
        .file("corp.secret", "s3cret\n")
        .args(&["check", "tools.toml"])
        .run();
    out.success().stdout_has(
        "sign-in `corp`: at https://sso.example.com/realms/team, register the redirect URL https://YOUR-FTW/login/oidc/corp/callback",
    );
    out.stderr_has("other users can read the client secret file");
}

#[test]
fn oidc_mistakes_are_errors_with_the_fix() {
    let out = Test::new()
        .manifest(
            r#"
[auth.oidc.open]
issuer = "http://sso.example.com"
client_id = "ftw"
client_secret = "x"

[auth.oidc.both]
issuer = "https://sso.example.com"
client_id = ""
client_secret = "x"
client_secret_file = "missing.secret"
allowed_emails = ["not-an-email"]
allowed_domains = ["@example.com"]

[auth.oidc."bad name"]
issuer = "https://sso.example.com"
client_id = "ftw"
allowed_groups = ["ops"]

[tools.hello]
command = ["/bin/echo", "hello"]
"#,
        )
        .args(&["check", "tools.toml"])
        .run();
    out.code(2);
    for part in [
        "`issuer` must be an https:// URL",
        "nobody may sign in with `open`",
        "`client_id` is empty",
        "set `client_secret` or `client_secret_file`, not both",
        "\"not-an-email\" is not an email address",
        "\"@example.com\" is not a domain",
        "provider name \"bad name\" may only use",
        "provider `bad name` has no client secret",
    ] {
        out.stderr_has(part);
    }
}

#[test]
fn ldap_passwords_may_not_cross_the_network_in_the_clear() {
    let out = Test::new()
        .manifest(
            r#"
[auth.ldap]
url = "ldap://ldap.example.com"
bind_dn = "cn=ftw,dc=example,dc=com"
base_dn = "dc=example,dc=com"
user_filter = "(uid=alice)"

[tools.hello]
command = ["/bin/echo", "hello"]
"#,
        )
        .args(&["check", "tools.toml"])
        .run();
    out.code(2);
    out.stderr_has("`url` is plain ldap:// to another machine");
    out.stderr_has("`bind_dn` needs `bind_password_file`");
    out.stderr_has("must be in parentheses and hold {username}");

    let fine = Test::new()
        .manifest(
            r#"
[auth.ldap]
url = "ldap://ldap.example.com"
starttls = true
base_dn = "dc=example,dc=com"

[tools.hello]
command = ["/bin/echo", "hello"]
"#,
        )
        .args(&["check", "tools.toml"])
        .run();
    fine.success();
}

#[test]
fn github_needs_somebody_allowed() {
    let out = Test::new()
        .manifest(
            r#"
[auth.github]
client_id = "Iv1.x"
client_secret = "s"
allowed_teams = ["no-slash"]
url = "http://github.example.com"

[tools.hello]
command = ["/bin/echo", "hello"]
"#,
        )
        .args(&["check", "tools.toml"])
        .run();
    out.code(2);
    out.stderr_has("\"no-slash\" is not a team");
    out.stderr_has("\"http://github.example.com\" must be an https:// address");
}

#[test]
fn passwordless_passkeys_without_password_users_are_warned_about() {
    let out = Test::new()
        .manifest(
            r#"
[auth]
passkey_sign_in = true

[auth.oidc.corp]
issuer = "https://sso.example.com"
client_id = "ftw"
client_secret = "s"
allowed_domains = ["example.com"]

[tools.hello]
command = ["/bin/echo", "hello"]
"#,
        )
        .args(&["check", "tools.toml"])
        .run();
    out.success();
    out.stderr_has("`passkey_sign_in` is on, but only users of [auth.users] have passkeys");
}

#[test]
fn a_shared_database_needs_tls_over_a_network_and_no_password_in_the_manifest() {
    let tool = "[tools.t]\ncommand = [\"true\"]\n";
    let check = |server: &str| {
        Test::new()
            .manifest(&format!("[server]\n{server}\n{tool}"))
            .args(&["check", "tools.toml"])
            .run()
    };
    check(r#"database = "postgres://ftw@db.example.com/ftw""#)
        .code(2)
        .stderr_has("add ?sslmode=require");
    check(r#"database = "postgres://ftw:hunter2@127.0.0.1/ftw""#)
        .code(2)
        .stderr_has("the `database` URL holds a password")
        .stderr_has("database_password_file");
    check(r#"database = "mysql://ftw@127.0.0.1/ftw""#)
        .code(2)
        .stderr_has("is not a PostgreSQL URL");
    check(r#"database_password_file = "pw""#)
        .code(2)
        .stderr_has("cannot read the database password file");
    check(r#"database = "postgres://ftw@db.example.com/ftw?sslmode=require""#).success();
}
