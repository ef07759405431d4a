fn main() -> std::process::ExitCode {
    ftw::run()
}
