// The static release links musl, whose malloc takes one lock for every
// thread; it uses jemalloc instead (measured in BENCHMARKS.md). glibc
// builds keep glibc's allocator.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    jrps::run()
}
