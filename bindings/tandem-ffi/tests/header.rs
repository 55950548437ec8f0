//! The committed `include/tandem.h` is exactly what cbindgen generates from the sources.
//! After changing the API, refresh it with: `TANDEM_FFI_BLESS=1 cargo test -p tandem-ffi --test header`.

#[test]
fn the_committed_header_is_current() {
    let generated =
        std::fs::read_to_string(concat!(env!("OUT_DIR"), "/tandem.h")).expect("build.rs wrote the header");
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/tandem.h");
    if std::env::var_os("TANDEM_FFI_BLESS").is_some() {
        std::fs::write(committed_path, &generated).expect("write include/tandem.h");
    }
    let committed = std::fs::read_to_string(committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "bindings/tandem-ffi/include/tandem.h is stale; regenerate it with \
         `TANDEM_FFI_BLESS=1 cargo test -p tandem-ffi --test header` and commit it"
    );
    for symbol in ["tandem_engine_open", "tandem_engine_run", "tandem_engine_save_state", "tandem_last_error"]
    {
        assert!(generated.contains(symbol), "{symbol} is exported");
    }
}
