fn main() -> std::process::ExitCode {
    jrps::run()
}
