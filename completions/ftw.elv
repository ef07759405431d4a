
use builtin;
use str;

set edit:completion:arg-completer[ftw] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'ftw'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'ftw'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Serve the tools of a manifest as authenticated web forms'
            cand check 'Validate a manifest and report every problem in it at once'
            cand gen-secret 'Print a new random signing key for session cookies'
            cand gen-token 'Make an API token: printed once, with the manifest lines that hold its hash'
            cand hash-password 'Hash a password with argon2id for the manifest''s [auth.users]'
            cand cert 'Create TLS certificate and key files for `ftw serve`'
            cand totp-setup 'Make a TOTP secret so a user signs in with a code from an authenticator app'
            cand completions 'Print a shell completion script'
            cand man 'Print the manual page (roff) on standard output'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ftw;serve'= {
            cand --host 'Address to listen on [default: [server] host, else 127.0.0.1]'
            cand --port 'Port to listen on; 0 picks any free port [default: [server] port, else 8000]'
            cand --tls-cert 'PEM certificate chain; with --tls-key, serve HTTPS'
            cand --tls-key 'PEM private key for --tls-cert'
            cand --secret-key-file 'File holding the key that signs session cookies (from `ftw gen-secret`)'
            cand --audit-log 'Append one JSON line per sign-in, sign-out and run to this file'
            cand --max-runs 'Runs that may execute at once, over all tools (more wait in a short queue)'
            cand --client-timeout 'How long a client may take to send its request headers, or pause while sending a body, before ftw drops it'
            cand --max-connections 'Open connections at most (live output pages count); more wait to be accepted'
            cand --max-connections-per-client 'Open connections at most from one address (IPv6: one /64); trusted proxies are not capped [default: an eighth of --max-connections, from 4 to 64]'
            cand --allowed-hosts 'Host names ftw answers to besides its own, comma-separated (e.g. the name users open in a container or behind a proxy); adds to [server] allowed_hosts'
            cand --max-streams-per-user 'Live output streams (run pages, API event streams) one user may have open at once'
            cand --state-dir 'Folder for ftw''s database, runs, their output and files (made mode 0700) [default: [server] state_dir, else $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/ftw, else ~/.local/state/ftw]'
            cand --database 'A PostgreSQL database shared by several ftw replicas, e.g. postgres://ftw@db.internal/ftw?sslmode=require [default: [server] database, else SQLite in the state folder]'
            cand --database-password-file 'A file (mode 0600) with the database user''s password [default: [server] database_password_file]'
            cand --keep-runs 'Finished runs kept in the history, with their output and files [default: [server] keep_runs, else 10000]'
            cand --keep-for 'Remove finished runs older than this, e.g. "30d" [default: [server] keep_for, else keep them]'
            cand --max-state-size 'The most the state folder may take; the oldest runs go first [default: [server] max_state_size, else 5GB]'
            cand --max-runs-per-user 'Runs one user may have queued or running at once [default: [server] max_runs_per_user, else 8]'
            cand --shutdown-grace 'On SIGINT/SIGTERM, how long running tools may finish before they are killed'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ftw;check'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ftw;gen-secret'= {
            cand --bytes 'How many random bytes to generate (16 to 1024; ftw serve needs at least 32)'
            cand --base64 'Print base64 instead of hex'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ftw;gen-token'= {
            cand --name 'The token''s name in [auth.tokens]'
            cand --user 'The user whose rights the token has'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ftw;hash-password'= {
            cand --verify 'Check a password against this hash instead (exit 0 if it matches, 1 if not)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ftw;cert'= {
            cand --san 'A DNS name or IP address the certificate is valid for, besides localhost, 127.0.0.1 and ::1 (repeatable)'
            cand --days 'How many days the certificate stays valid'
            cand --out-dir 'Folder to write cert.pem and key.pem into'
            cand --self-signed 'Make a self-signed certificate (for a LAN, a lab, or a first try)'
            cand --no-default-sans 'Leave localhost, 127.0.0.1 and ::1 out: only the --san names'
            cand --force 'Replace cert.pem and key.pem if they exist'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ftw;totp-setup'= {
            cand --issuer 'The name authenticator apps show for this account'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ftw;completions'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ftw;man'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ftw;help'= {
            cand serve 'Serve the tools of a manifest as authenticated web forms'
            cand check 'Validate a manifest and report every problem in it at once'
            cand gen-secret 'Print a new random signing key for session cookies'
            cand gen-token 'Make an API token: printed once, with the manifest lines that hold its hash'
            cand hash-password 'Hash a password with argon2id for the manifest''s [auth.users]'
            cand cert 'Create TLS certificate and key files for `ftw serve`'
            cand totp-setup 'Make a TOTP secret so a user signs in with a code from an authenticator app'
            cand completions 'Print a shell completion script'
            cand man 'Print the manual page (roff) on standard output'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ftw;help;serve'= {
        }
        &'ftw;help;check'= {
        }
        &'ftw;help;gen-secret'= {
        }
        &'ftw;help;gen-token'= {
        }
        &'ftw;help;hash-password'= {
        }
        &'ftw;help;cert'= {
        }
        &'ftw;help;totp-setup'= {
        }
        &'ftw;help;completions'= {
        }
        &'ftw;help;man'= {
        }
        &'ftw;help;help'= {
        }
    ]
    $completions[$command]
}
