
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'ftw' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'ftw'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'ftw' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the tools of a manifest as authenticated web forms')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Validate a manifest and report every problem in it at once')
            [CompletionResult]::new('gen-secret', 'gen-secret', [CompletionResultType]::ParameterValue, 'Print a new random signing key for session cookies')
            [CompletionResult]::new('gen-token', 'gen-token', [CompletionResultType]::ParameterValue, 'Make an API token: printed once, with the manifest lines that hold its hash')
            [CompletionResult]::new('hash-password', 'hash-password', [CompletionResultType]::ParameterValue, 'Hash a password with argon2id for the manifest''s [auth.users]')
            [CompletionResult]::new('cert', 'cert', [CompletionResultType]::ParameterValue, 'Create TLS certificate and key files for `ftw serve`')
            [CompletionResult]::new('totp-setup', 'totp-setup', [CompletionResultType]::ParameterValue, 'Make a TOTP secret so a user signs in with a code from an authenticator app')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the manual page (roff) on standard output')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ftw;serve' {
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to listen on [default: [server] host, else 127.0.0.1]')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on; 0 picks any free port [default: [server] port, else 8000]')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'PEM certificate chain; with --tls-key, serve HTTPS')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'PEM private key for --tls-cert')
            [CompletionResult]::new('--secret-key-file', '--secret-key-file', [CompletionResultType]::ParameterName, 'File holding the key that signs session cookies (from `ftw gen-secret`)')
            [CompletionResult]::new('--audit-log', '--audit-log', [CompletionResultType]::ParameterName, 'Append one JSON line per sign-in, sign-out and run to this file')
            [CompletionResult]::new('--max-runs', '--max-runs', [CompletionResultType]::ParameterName, 'Runs that may execute at once, over all tools (more wait in a short queue)')
            [CompletionResult]::new('--client-timeout', '--client-timeout', [CompletionResultType]::ParameterName, 'How long a client may take to send its request headers, or pause while sending a body, before ftw drops it')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Open connections at most (live output pages count); more wait to be accepted')
            [CompletionResult]::new('--max-connections-per-client', '--max-connections-per-client', [CompletionResultType]::ParameterName, 'Open connections at most from one address (IPv6: one /64); trusted proxies are not capped [default: an eighth of --max-connections, from 4 to 64]')
            [CompletionResult]::new('--allowed-hosts', '--allowed-hosts', [CompletionResultType]::ParameterName, 'Host names ftw answers to besides its own, comma-separated (e.g. the name users open in a container or behind a proxy); adds to [server] allowed_hosts')
            [CompletionResult]::new('--max-streams-per-user', '--max-streams-per-user', [CompletionResultType]::ParameterName, 'Live output streams (run pages, API event streams) one user may have open at once')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Folder for ftw''s database, runs, their output and files (made mode 0700) [default: [server] state_dir, else $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/ftw, else ~/.local/state/ftw]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'A PostgreSQL database shared by several ftw replicas, e.g. postgres://ftw@db.internal/ftw?sslmode=require [default: [server] database, else SQLite in the state folder]')
            [CompletionResult]::new('--database-password-file', '--database-password-file', [CompletionResultType]::ParameterName, 'A file (mode 0600) with the database user''s password [default: [server] database_password_file]')
            [CompletionResult]::new('--keep-runs', '--keep-runs', [CompletionResultType]::ParameterName, 'Finished runs kept in the history, with their output and files [default: [server] keep_runs, else 10000]')
            [CompletionResult]::new('--keep-for', '--keep-for', [CompletionResultType]::ParameterName, 'Remove finished runs older than this, e.g. "30d" [default: [server] keep_for, else keep them]')
            [CompletionResult]::new('--max-state-size', '--max-state-size', [CompletionResultType]::ParameterName, 'The most the state folder may take; the oldest runs go first [default: [server] max_state_size, else 5GB]')
            [CompletionResult]::new('--max-runs-per-user', '--max-runs-per-user', [CompletionResultType]::ParameterName, 'Runs one user may have queued or running at once [default: [server] max_runs_per_user, else 8]')
            [CompletionResult]::new('--shutdown-grace', '--shutdown-grace', [CompletionResultType]::ParameterName, 'On SIGINT/SIGTERM, how long running tools may finish before they are killed')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ftw;check' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ftw;gen-secret' {
            [CompletionResult]::new('--bytes', '--bytes', [CompletionResultType]::ParameterName, 'How many random bytes to generate (16 to 1024; ftw serve needs at least 32)')
            [CompletionResult]::new('--base64', '--base64', [CompletionResultType]::ParameterName, 'Print base64 instead of hex')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ftw;gen-token' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The token''s name in [auth.tokens]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user whose rights the token has')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ftw;hash-password' {
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'Check a password against this hash instead (exit 0 if it matches, 1 if not)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ftw;cert' {
            [CompletionResult]::new('--san', '--san', [CompletionResultType]::ParameterName, 'A DNS name or IP address the certificate is valid for, besides localhost, 127.0.0.1 and ::1 (repeatable)')
            [CompletionResult]::new('--days', '--days', [CompletionResultType]::ParameterName, 'How many days the certificate stays valid')
            [CompletionResult]::new('--out-dir', '--out-dir', [CompletionResultType]::ParameterName, 'Folder to write cert.pem and key.pem into')
            [CompletionResult]::new('--self-signed', '--self-signed', [CompletionResultType]::ParameterName, 'Make a self-signed certificate (for a LAN, a lab, or a first try)')
            [CompletionResult]::new('--no-default-sans', '--no-default-sans', [CompletionResultType]::ParameterName, 'Leave localhost, 127.0.0.1 and ::1 out: only the --san names')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace cert.pem and key.pem if they exist')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ftw;totp-setup' {
            [CompletionResult]::new('--issuer', '--issuer', [CompletionResultType]::ParameterName, 'The name authenticator apps show for this account')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ftw;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ftw;man' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ftw;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the tools of a manifest as authenticated web forms')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Validate a manifest and report every problem in it at once')
            [CompletionResult]::new('gen-secret', 'gen-secret', [CompletionResultType]::ParameterValue, 'Print a new random signing key for session cookies')
            [CompletionResult]::new('gen-token', 'gen-token', [CompletionResultType]::ParameterValue, 'Make an API token: printed once, with the manifest lines that hold its hash')
            [CompletionResult]::new('hash-password', 'hash-password', [CompletionResultType]::ParameterValue, 'Hash a password with argon2id for the manifest''s [auth.users]')
            [CompletionResult]::new('cert', 'cert', [CompletionResultType]::ParameterValue, 'Create TLS certificate and key files for `ftw serve`')
            [CompletionResult]::new('totp-setup', 'totp-setup', [CompletionResultType]::ParameterValue, 'Make a TOTP secret so a user signs in with a code from an authenticator app')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the manual page (roff) on standard output')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ftw;help;serve' {
            break
        }
        'ftw;help;check' {
            break
        }
        'ftw;help;gen-secret' {
            break
        }
        'ftw;help;gen-token' {
            break
        }
        'ftw;help;hash-password' {
            break
        }
        'ftw;help;cert' {
            break
        }
        'ftw;help;totp-setup' {
            break
        }
        'ftw;help;completions' {
            break
        }
        'ftw;help;man' {
            break
        }
        'ftw;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
