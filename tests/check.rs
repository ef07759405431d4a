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
