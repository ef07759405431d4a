//! Manifest mistakes and the exact report `ftw check` gives for each: position, source
//! line, caret, message, did-you-mean and help. One test per mistake, named after it.

use crate::support::{HASH_A, Test, unindent};

/// Runs `ftw check tools.toml` on `manifest` and asserts exit 2 and exactly `expected`.
#[track_caller]
fn check_fails(test: Test, expected: &str) {
    test.args(&["check", "tools.toml"])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&unindent(expected));
}

/// `check_fails` for reports that name the test's folder: it reads as `DIR` in `expected`.
#[track_caller]
fn check_fails_in_dir(test: Test, expected: &str) {
    let dir = std::fs::canonicalize(test.path()).unwrap();
    let out = test.args(&["check", "tools.toml"]).run();
    out.code(2).stdout_is("");
    assert_eq!(
        out.stderr.replace(&dir.display().to_string(), "DIR"),
        unindent(expected)
    );
}

#[test]
fn unknown_top_level_key_suggests_the_right_one() {
    check_fails(
        Test::new().manifest("tittle = \"Ops\"\n\n[tools.hi]\ncommand = [\"/bin/echo\", \"hi\"]\n"),
        r#"
        tools.toml:1:1: error: unknown key `tittle` in the top level; did you mean `title`?
          |
        1 | tittle = "Ops"
          | ^^^^^^
          = help: known keys here: title, server, auth, tools, notify
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn unknown_tool_key_suggests_the_right_one() {
    check_fails(
        Test::new()
            .manifest("[tools.backup]\ncommand = [\"/bin/echo\", \"backup\"]\ntiemout = \"10m\"\n"),
        r#"
        tools.toml:3:1: error: unknown key `tiemout` in [tools.backup]; did you mean `timeout`?
          |
        3 | tiemout = "10m"
          | ^^^^^^^
          = help: known keys here: title, description, group, command, workdir, timeout, allow, max_concurrent, max_output, stderr, env, schedule, webhook, notify, notify_on
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn unknown_type_suggests_int_for_integer() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"/bin/echo\", \"{n}\"]\n\n[tools.t.args.n]\ntype = \"integer\"\n",
        ),
        r#"
        tools.toml:5:8: error: unknown type "integer"; did you mean "int"?
          |
        5 | type = "integer"
          |        ^^^^^^^^^
          = help: types: text, textarea, password, int, float, bool, select, multiselect, date, time, datetime, email, url, color, file
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn placeholder_naming_no_argument_points_inside_the_element() {
    check_fails(
        Test::new().manifest(
            "[tools.greet]\ncommand = [\"/bin/echo\", \"--name={nmae}\"]\n\n[tools.greet.args.name]\ntype = \"text\"\n",
        ),
        r#"
        tools.toml:2:33: error: placeholder `{nmae}` names no argument; did you mean `{name}`?
          |
        2 | command = ["/bin/echo", "--name={nmae}"]
          |                                 ^^^^^^
          = help: arguments: name
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn default_that_breaks_its_own_constraint() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"/bin/echo\", \"{level}\"]\n\n[tools.t.args.level]\ntype = \"int\"\nmin = 1\nmax = 5\ndefault = 9\n",
        ),
        r#"
        tools.toml:8:11: error: the default 9 breaks its own rule: it must be between 1 and 5
          |
        8 | default = 9
          |           ^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn min_above_max() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"/bin/echo\", \"{size}\"]\n\n[tools.t.args.size]\ntype = \"float\"\nmin = 10.5\nmax = 2\n",
        ),
        r#"
        tools.toml:7:7: error: the maximum 2 is below the minimum 10.5
          |
        7 | max = 2
          |       ^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn invalid_regex() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"/bin/echo\", \"{label}\"]\n\n[tools.t.args.label]\ntype = \"text\"\npattern = \"[a-z+\"\n",
        ),
        r#"
        tools.toml:6:11: error: `pattern` is not a valid regular expression: unclosed character class
          |
        6 | pattern = "[a-z+"
          |           ^^^^^^^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn empty_options() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"/bin/echo\", \"{db}\"]\n\n[tools.t.args.db]\ntype = \"select\"\noptions = []\n",
        ),
        r#"
        tools.toml:6:11: error: `options` is empty; list at least one choice
          |
        6 | options = []
          |           ^^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn plain_text_password_names_hash_password() {
    check_fails(
        Test::new().manifest(
            "[auth.users]\nalice = \"correct horse battery staple\"\n\n[tools.t]\ncommand = [\"/bin/echo\"]\n",
        ),
        r#"
        tools.toml:2:9: error: the password of `alice` is in plain text; ftw only stores argon2id hashes
          |
        2 | alice = "correct horse battery staple"
          |         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
          = help: run `ftw hash-password` and paste the line it prints here
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn malformed_phc_string() {
    check_fails(
        Test::new().manifest(
            "[auth.users]\nbob = { password = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA\", groups = [\"ops\"] }\n\n[tools.t]\ncommand = [\"/bin/echo\"]\n",
        ),
        r#"
        tools.toml:2:20: error: the password hash of `bob` is not usable: it is not a valid PHC string (salt too short (minimum 8 bytes))
          |
        2 | bob = { password = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA", groups = ["ops"] }
          |                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
          = help: run `ftw hash-password` to make a new hash
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn allow_naming_unknown_user_and_group() {
    let manifest = format!(
        "[auth.users]\nalice = {{ password = \"{HASH_A}\", groups = [\"ops\"] }}\n\n[tools.t]\ncommand = [\"/bin/echo\"]\nallow = [\"alcie\", \"@opz\"]\n"
    );
    check_fails(
        Test::new().manifest(&manifest),
        r#"
        tools.toml:6:10: error: `allow` names user `alcie`, who is not defined; did you mean `alice`?
          |
        6 | allow = ["alcie", "@opz"]
          |          ^^^^^^^
        tools.toml:6:19: error: `allow` names group `@opz`, but no user is in it; did you mean `@ops`?
          |
        6 | allow = ["alcie", "@opz"]
          |                   ^^^^^^
          = help: groups are made by listing them in a user's `groups`
        tools.toml: 2 errors
        "#,
    );
}

#[test]
fn unreadable_workdir() {
    check_fails(
        Test::new()
            .manifest("[tools.t]\ncommand = [\"/bin/echo\"]\nworkdir = \"missing-folder\"\n"),
        r#"
        tools.toml:3:11: error: `workdir` "missing-folder" is not a readable folder: No such file or directory
          |
        3 | workdir = "missing-folder"
          |           ^^^^^^^^^^^^^^^^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn timeout_and_max_size_that_do_not_parse() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"/bin/echo\", \"{f}\"]\ntimeout = \"10 minuts\"\n\n[tools.t.args.f]\ntype = \"file\"\nmax_size = \"ten megs\"\n",
        ),
        r#"
        tools.toml:3:11: error: `timeout` "10 minuts" is not a duration (unknown unit "minuts")
          |
        3 | timeout = "10 minuts"
          |           ^^^^^^^^^^^
          = help: write a number and a unit, such as "90s", "10m", "12h" or "14d"
        tools.toml:7:12: error: `max_size` "ten megs" is not a size
          |
        7 | max_size = "ten megs"
          |            ^^^^^^^^^^
          = help: write a number and a unit, such as "512KB", "10MB" or "1GiB"
        tools.toml: 2 errors
        "#,
    );
}

#[test]
fn shell_string_command_shows_the_array_to_write() {
    check_fails(
        Test::new().manifest("[tools.t]\ncommand = \"tar czf /tmp/backup.tgz /srv\"\n"),
        r#"
        tools.toml:2:11: error: `command` must be an array of strings: ftw never runs a shell
          |
        2 | command = "tar czf /tmp/backup.tgz /srv"
          |           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
          = help: write command = ["tar", "czf", "/tmp/backup.tgz", "/srv"]
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn toml_syntax_error() {
    check_fails(
        Test::new().manifest("[tools.t]\ncommand = [\"/bin/echo\", \"hi\"\n"),
        r#"
        tools.toml:2:29: error: invalid TOML: unclosed array, expected `]`
          |
        2 | command = ["/bin/echo", "hi"
          |                             ^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn key_that_does_not_apply_to_the_type() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"/bin/echo\", \"{name}\"]\n\n[tools.t.args.name]\ntype = \"text\"\nmax = 20\n",
        ),
        r#"
        tools.toml:6:7: error: `max` does not apply to type "text"; did you mean `max_length`?
          |
        6 | max = 20
          |       ^^
          = help: `max` applies to: int, float, multiselect, date, time, datetime
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn missing_command_and_type() {
    check_fails(
        Test::new().manifest("[tools.t]\ntitle = \"x\"\n\n[tools.t.args.a]\nlabel = \"A\"\n"),
        r#"
        tools.toml:1:1: error: [tools.t] has no `command`
          |
        1 | [tools.t]
          | ^^^^^^^^^
          = help: `command` lists the program and its arguments, such as command = ["./backup.sh", "--db", "{db}"]
        tools.toml:4:1: error: [tools.t.args.a] has no `type`
          |
        4 | [tools.t.args.a]
          | ^^^^^^^^^^^^^^^^
          = help: types: text, textarea, password, int, float, bool, select, multiselect, date, time, datetime, email, url, color, file
        tools.toml: 2 errors
        "#,
    );
}

#[test]
fn program_chosen_by_a_form_value() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"{prog}\", \"x\"]\n\n[tools.t.args.prog]\ntype = \"text\"\n",
        ),
        r#"
        tools.toml:2:12: error: the program (first element of `command`) must be fixed; a form value cannot choose what runs
          |
        2 | command = ["{prog}", "x"]
          |            ^^^^^^^^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn program_that_is_not_executable() {
    let test = Test::new()
        .manifest("[tools.t]\ncommand = [\"./run.sh\"]\n")
        .file("run.sh", "#!/bin/sh\n");
    let dir = std::fs::canonicalize(test.path()).unwrap();
    check_fails(
        test,
        &format!(
            r#"
            tools.toml:2:12: error: the program "./run.sh" is not executable
              |
            2 | command = ["./run.sh"]
              |            ^^^^^^^^^^
              = help: run `chmod +x {}/run.sh`
            tools.toml: 1 error
            "#,
            dir.display()
        ),
    );
}

#[test]
fn user_in_both_the_manifest_and_the_users_file() {
    let test = Test::new()
        .manifest(&format!(
            "[auth]\nusers_file = \"users.toml\"\n\n[auth.users]\nalice = \"{HASH_A}\"\n\n[tools.t]\ncommand = [\"/bin/echo\"]\n"
        ))
        .file("users.toml", &format!("bob = \"{HASH_A}\"\nalice = \"{HASH_A}\"\n"));
    check_fails(
        test,
        &format!(
            r#"
            users.toml:2:1: error: user `alice` is defined twice (also in tools.toml); keep one
              |
            2 | alice = "{HASH_A}"
              | ^^^^^
            tools.toml: 1 error
            "#
        ),
    );
}

#[test]
fn multiselect_inside_a_larger_element_and_duplicate_option() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"/bin/echo\", \"--tags={tags}\"]\n\n[tools.t.args.tags]\ntype = \"multiselect\"\noptions = [\"a\", \"b\", \"a\"]\n",
        ),
        r#"
        tools.toml:6:22: error: option "a" is listed twice
          |
        6 | options = ["a", "b", "a"]
          |                      ^^^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let out = Test::new()
        .manifest(
            r#"colour = "blue"

[server]
port = "80"

[tools.a]
command = ["/bin/echo", "{x}"]
tiemout = "1m"

[tools.a.args.x]
type = "nubmer"

[tools.b]
command = "ls -l"
"#,
        )
        .args(&["check", "tools.toml"])
        .run();
    out.code(2);
    let headlines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("tools.toml"))
        .collect();
    assert_eq!(
        headlines,
        [
            "tools.toml:1:1: error: unknown key `colour` in the top level",
            "tools.toml:4:8: error: wrong type: string \"80\", expected a whole number from 0 to 65535 (in [server])",
            "tools.toml:8:1: error: unknown key `tiemout` in [tools.a]; did you mean `timeout`?",
            "tools.toml:11:8: error: unknown type \"nubmer\"; did you mean \"int\"?",
            "tools.toml:14:11: error: `command` must be an array of strings: ftw never runs a shell",
            "tools.toml: 5 errors",
        ]
    );
}

#[test]
fn positional_free_text_is_a_warning_not_an_error() {
    Test::new()
        .manifest("[tools.t]\ncommand = [\"/bin/echo\", \"{name}\"]\n\n[tools.t.args.name]\ntype = \"text\"\n")
        .args(&["check", "tools.toml"])
        .run()
        .success()
        .stdout_is("t  1 arg     every signed-in user\n")
        .stderr_is(&unindent(
            r#"
            tools.toml:2:26: warning: text argument `name` is passed positionally: a value starting with `-` could be read as an option; put "--" before it if the program accepts that
              |
            2 | command = ["/bin/echo", "{name}"]
              |                          ^^^^^^
            "#,
        ));
}

#[test]
fn after_double_dash_there_is_no_warning() {
    Test::new()
        .manifest("[tools.t]\ncommand = [\"/bin/echo\", \"--\", \"{name}\"]\n\n[tools.t.args.name]\ntype = \"text\"\n")
        .args(&["check", "tools.toml"])
        .run()
        .success()
        .stderr_is("");
}

#[test]
fn a_bad_placeholder_does_not_hide_a_missing_script() {
    check_fails_in_dir(
        Test::new().manifest("[tools.a]\ncommand = [\"./missing.sh\", \"{nope}\"]\n"),
        r#"
        tools.toml:2:12: error: the program "./missing.sh" (DIR/missing.sh) cannot be used: No such file or directory
          |
        2 | command = ["./missing.sh", "{nope}"]
          |            ^^^^^^^^^^^^^^
        tools.toml:2:29: error: placeholder `{nope}` names no argument
          |
        2 | command = ["./missing.sh", "{nope}"]
          |                             ^^^^^^
          = help: this tool has no arguments
        tools.toml: 2 errors
        "#,
    );
}

#[test]
fn a_bare_name_beside_the_manifest_suggests_dot_slash() {
    check_fails(
        Test::new()
            .exec("greet.sh", "#!/bin/sh\necho hi\n")
            .manifest("[tools.greet]\ncommand = [\"greet.sh\"]\n"),
        r#"
        tools.toml:2:12: error: `greet.sh` is not on PATH; did you mean `./greet.sh`?
          |
        2 | command = ["greet.sh"]
          |            ^^^^^^^^^^
          = help: a program without a `/` is looked up on PATH; write "./greet.sh" for the file in the tool's workdir
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn every_stray_option_of_a_multiselect_default_is_named() {
    check_fails(
        Test::new().manifest(
            "[tools.t]\ncommand = [\"/bin/echo\", \"{tags}\"]\n\n[tools.t.args.tags]\ntype = \"multiselect\"\noptions = [\"x\", \"y\"]\nmax = 1\ndefault = [\"z\", \"w\", \"z\"]\n",
        ),
        r#"
        tools.toml:8:11: error: the default ["z", "w", "z"] breaks its own rule: it must be one of the options, not "z" or "w", and lists "z" twice, and allows at most one choice
          |
        8 | default = ["z", "w", "z"]
          |           ^^^^^^^^^^^^^^^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn admins_naming_nobody_says_admins() {
    check_fails(
        Test::new().manifest(&format!(
            "[auth]\nadmins = [\"alise\"]\n\n[auth.users]\nalice = \"{HASH_A}\"\n\n[tools.t]\ncommand = [\"/bin/true\"]\n"
        )),
        r#"
        tools.toml:2:11: error: `admins` names user `alise`, who is not defined; did you mean `alice`?
          |
        2 | admins = ["alise"]
          |           ^^^^^^^
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn a_readable_users_file_with_totp_secrets_gets_a_warning() {
    let users = format!(
        "alice = {{ password = \"{HASH_A}\", totp = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\" }}\n"
    );
    let test = Test::new()
        .file("users.toml", &users)
        .manifest("[auth]\nusers_file = \"users.toml\"\n\n[tools.t]\ncommand = [\"/bin/true\"]\n");
    use std::os::unix::fs::PermissionsExt;
    let path = test.path().join("users.toml");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dir = std::fs::canonicalize(test.path()).unwrap();
    let out = test.args(&["check", "tools.toml"]).run();
    out.success();
    assert_eq!(
        out.stderr.replace(&dir.display().to_string(), "DIR"),
        unindent(
            r#"
            tools.toml:2:14: warning: the users file "users.toml" holds TOTP secrets and other users can read it (mode 644); run `chmod 600 DIR/users.toml`
              |
            2 | users_file = "users.toml"
              |              ^^^^^^^^^^^^
            "#
        )
    );
    // Once private, nothing to say.
    let private = Test::new()
        .file("users.toml", &users)
        .manifest("[auth]\nusers_file = \"users.toml\"\n\n[tools.t]\ncommand = [\"/bin/true\"]\n");
    let path = private.path().join("users.toml");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    private
        .args(&["check", "tools.toml"])
        .run()
        .success()
        .stderr_is("");
}

#[test]
fn an_unknown_stderr_mode_suggests_the_right_one() {
    check_fails(
        Test::new().manifest("[tools.t]\ncommand = [\"/bin/true\"]\nstderr = \"seperate\"\n"),
        r#"
        tools.toml:3:10: error: `stderr` "seperate" is not a way to capture it; did you mean "separate"?
          |
        3 | stderr = "seperate"
          |          ^^^^^^^^^^
          = help: "merged" (with stdout, in exact order) or "separate" (tinted; order between the two not kept)
        tools.toml: 1 error
        "#,
    );
}

#[test]
fn a_token_for_a_removed_user() {
    let manifest = format!(
        "[auth.users]\nalice = \"{HASH_A}\"\n\n[auth.tokens.ci]\nhash = \"sha256:{}\"\nuser = \"bob\"\n\n[tools.t]\ncommand = [\"/bin/echo\"]\n",
        "ab".repeat(32)
    );
    check_fails(
        Test::new().manifest(&manifest),
        r#"
        tools.toml:6:8: error: token `ci` is for user `bob`, who is not defined
          |
        6 | user = "bob"
          |        ^^^^^
          = help: a token acts as its user: if `bob` was removed, remove this token too (until then a running ftw keeps the previous manifest, in which `bob` can still sign in)
        tools.toml: 1 error
        "#,
    );
}
