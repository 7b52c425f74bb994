//! The workload manifest (YAML), on arbitrary text, through the same steps
//! as `host run`: parse, validate, resolve paths.
//!
//! Asserts: parsing and validating end in a value or an error, never a
//! panic; a manifest that validates names each component once and finds
//! it by name.
#![no_main]

use std::path::Path;

use host_manifest::Workload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut workload) = Workload::parse(text) else {
        return;
    };
    if workload.validate().is_err() {
        return;
    }
    workload.resolve_paths(Path::new("/base"));
    for (i, c) in workload.components.iter().enumerate() {
        assert!(
            workload.components[..i].iter().all(|d| d.name != c.name),
            "`{}` twice",
            c.name
        );
        assert!(workload.component(&c.name).is_some());
        if let Some(file) = &c.file {
            assert!(file.starts_with("/base") || file.is_absolute());
        }
    }
    workload.skip_served_checks();
    let _ = workload.validate();
});
