fn main() {
    // The module must never really unload: its writer thread, atexit and atfork handlers
    // point into it (rust-lang/rust#91979). With -z nodelete, dlclose keeps it mapped.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
