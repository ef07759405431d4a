# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ftw_global_optspecs
    string join \n h/help V/version
end

function __fish_ftw_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ftw_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ftw_using_subcommand
    set -l cmd (__fish_ftw_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ftw -n "__fish_ftw_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftw -n "__fish_ftw_needs_command" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "serve" -d 'Serve the tools of a manifest as authenticated web forms'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "check" -d 'Validate a manifest and report every problem in it at once'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "gen-secret" -d 'Print a new random signing key for session cookies'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "gen-token" -d 'Make an API token: printed once, with the manifest lines that hold its hash'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "hash-password" -d 'Hash a password with argon2id for the manifest\'s [auth.users]'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "cert" -d 'Create TLS certificate and key files for `ftw serve`'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "totp-setup" -d 'Make a TOTP secret so a user signs in with a code from an authenticator app'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "man" -d 'Print the manual page (roff) on standard output'
complete -c ftw -n "__fish_ftw_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l host -d 'Address to listen on [default: [server] host, else 127.0.0.1]' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l port -d 'Port to listen on; 0 picks any free port [default: [server] port, else 8000]' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l tls-cert -d 'PEM certificate chain; with --tls-key, serve HTTPS' -r -F
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l tls-key -d 'PEM private key for --tls-cert' -r -F
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l secret-key-file -d 'File holding the key that signs session cookies (from `ftw gen-secret`)' -r -F
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l audit-log -d 'Append one JSON line per sign-in, sign-out and run to this file' -r -F
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l max-runs -d 'Runs that may execute at once, over all tools (more wait in a short queue)' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l client-timeout -d 'How long a client may take to send its request headers, or pause while sending a body, before ftw drops it' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l max-connections -d 'Open connections at most (live output pages count); more wait to be accepted' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l max-connections-per-client -d 'Open connections at most from one address (IPv6: one /64); trusted proxies are not capped [default: an eighth of --max-connections, from 4 to 64]' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l allowed-hosts -d 'Host names ftw answers to besides its own, comma-separated (e.g. the name users open in a container or behind a proxy); adds to [server] allowed_hosts' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l max-streams-per-user -d 'Live output streams (run pages, API event streams) one user may have open at once' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l state-dir -d 'Folder for ftw\'s database, runs, their output and files (made mode 0700) [default: [server] state_dir, else $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/ftw, else ~/.local/state/ftw]' -r -f -a "(__fish_complete_directories)"
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l database -d 'A PostgreSQL database shared by several ftw replicas, e.g. postgres://ftw@db.internal/ftw?sslmode=require [default: [server] database, else SQLite in the state folder]' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l database-password-file -d 'A file (mode 0600) with the database user\'s password [default: [server] database_password_file]' -r -F
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l keep-runs -d 'Finished runs kept in the history, with their output and files [default: [server] keep_runs, else 10000]' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l keep-for -d 'Remove finished runs older than this, e.g. "30d" [default: [server] keep_for, else keep them]' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l max-state-size -d 'The most the state folder may take; the oldest runs go first [default: [server] max_state_size, else 5GB]' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l max-runs-per-user -d 'Runs one user may have queued or running at once [default: [server] max_runs_per_user, else 8]' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -l shutdown-grace -d 'On SIGINT/SIGTERM, how long running tools may finish before they are killed' -r
complete -c ftw -n "__fish_ftw_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftw -n "__fish_ftw_using_subcommand serve" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftw -n "__fish_ftw_using_subcommand check" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_using_subcommand gen-secret" -l bytes -d 'How many random bytes to generate (16 to 1024; ftw serve needs at least 32)' -r
complete -c ftw -n "__fish_ftw_using_subcommand gen-secret" -l base64 -d 'Print base64 instead of hex'
complete -c ftw -n "__fish_ftw_using_subcommand gen-secret" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftw -n "__fish_ftw_using_subcommand gen-secret" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_using_subcommand gen-token" -l name -d 'The token\'s name in [auth.tokens]' -r
complete -c ftw -n "__fish_ftw_using_subcommand gen-token" -l user -d 'The user whose rights the token has' -r
complete -c ftw -n "__fish_ftw_using_subcommand gen-token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftw -n "__fish_ftw_using_subcommand gen-token" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_using_subcommand hash-password" -l verify -d 'Check a password against this hash instead (exit 0 if it matches, 1 if not)' -r
complete -c ftw -n "__fish_ftw_using_subcommand hash-password" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftw -n "__fish_ftw_using_subcommand hash-password" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_using_subcommand cert" -l san -d 'A DNS name or IP address the certificate is valid for, besides localhost, 127.0.0.1 and ::1 (repeatable)' -r
complete -c ftw -n "__fish_ftw_using_subcommand cert" -l days -d 'How many days the certificate stays valid' -r
complete -c ftw -n "__fish_ftw_using_subcommand cert" -l out-dir -d 'Folder to write cert.pem and key.pem into' -r -f -a "(__fish_complete_directories)"
complete -c ftw -n "__fish_ftw_using_subcommand cert" -l self-signed -d 'Make a self-signed certificate (for a LAN, a lab, or a first try)'
complete -c ftw -n "__fish_ftw_using_subcommand cert" -l no-default-sans -d 'Leave localhost, 127.0.0.1 and ::1 out: only the --san names'
complete -c ftw -n "__fish_ftw_using_subcommand cert" -l force -d 'Replace cert.pem and key.pem if they exist'
complete -c ftw -n "__fish_ftw_using_subcommand cert" -s h -l help -d 'Print help'
complete -c ftw -n "__fish_ftw_using_subcommand cert" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_using_subcommand totp-setup" -l issuer -d 'The name authenticator apps show for this account' -r
complete -c ftw -n "__fish_ftw_using_subcommand totp-setup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftw -n "__fish_ftw_using_subcommand totp-setup" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftw -n "__fish_ftw_using_subcommand completions" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftw -n "__fish_ftw_using_subcommand man" -s V -l version -d 'Print version'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "serve" -d 'Serve the tools of a manifest as authenticated web forms'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "check" -d 'Validate a manifest and report every problem in it at once'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "gen-secret" -d 'Print a new random signing key for session cookies'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "gen-token" -d 'Make an API token: printed once, with the manifest lines that hold its hash'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "hash-password" -d 'Hash a password with argon2id for the manifest\'s [auth.users]'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "cert" -d 'Create TLS certificate and key files for `ftw serve`'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "totp-setup" -d 'Make a TOTP secret so a user signs in with a code from an authenticator app'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "man" -d 'Print the manual page (roff) on standard output'
complete -c ftw -n "__fish_ftw_using_subcommand help; and not __fish_seen_subcommand_from serve check gen-secret gen-token hash-password cert totp-setup completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
