//! Fuzz target `openflow`: arbitrary bytes into `strato_openflow::parse` (OpenFlow 1.0
//! and 1.3). It must never panic, and whatever parses must re-emit exactly the bytes it consumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strato_openflow as openflow;

fuzz_target!(|data: &[u8]| {
    if let Ok((msg, used)) = openflow::parse(data) {
        assert!(used <= data.len(), "consumed {used} of {} bytes", data.len());
        let out = openflow::emit(&msg);
        assert_eq!(out.as_slice(), &data[..used], "emit(parse(b)) != b for {msg:?}");
    }
});
