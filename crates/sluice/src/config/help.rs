//! `--help`: every option with its default, grouped by section.

use std::collections::BTreeMap;

use sluice_core::{OptionInfo, Section};

pub fn help() -> String {
    let mut s = String::from(
        "sluice: stream MySQL/MariaDB row changes as Maxwell-format JSON\n\n\
         usage: sluice [--option=value | --option value]...\n\
         \x20      sluice bootstrap --database=DB --table=TABLE [options]   (request a snapshot; see --help)\n\
         \x20      sluice reset-position [options]   (forget the stored position of client_id)\n\n\
         The same names work in --config files and, with env_config_prefix, in the environment.\n",
    );
    let mut sections: BTreeMap<Section, Vec<&OptionInfo>> = BTreeMap::new();
    for o in super::all_options() {
        sections.entry(o.section).or_default().push(o);
    }
    for (section, options) in sections {
        s.push_str(&format!("\n{section}:\n"));
        for o in options {
            let default = if o.default.is_empty() {
                String::new()
            } else {
                format!(" [default: {}]", o.default)
            };
            s.push_str(&format!("  --{:<32} {}{}\n", o.name, o.help, default));
        }
        if section == Section::Producer("kafka") {
            s.push_str(&format!(
                "  --{:<32} {}\n",
                "kafka.NAME",
                "any librdkafka property, passed as is (kafka.bootstrap.servers is required)"
            ));
        }
    }
    s
}
