//! `kafka.acks`, `kafka.retries` and `kafka.enable.idempotence` as Maxwell
//! configurations write them for Java's producer, reconciled with sluice's
//! idempotent producer (librdkafka refuses idempotence with acks other than
//! all, or with retries=0). What an explicit setting contradicts is turned
//! off with a warning that says the delivery guarantee it costs; two explicit
//! settings that contradict each other are a configuration error.

use sluice_core::ConfigError;

/// The settings as given, and what sluice adds or drops.
pub(super) struct Reconciled {
    pub client: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// The value of the first of `names` that is set (librdkafka's aliases).
fn setting<'a>(client: &'a [(String, String)], names: &[&str]) -> Option<(&'a str, &'a str)> {
    client
        .iter()
        .rev()
        .find(|(k, _)| names.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

fn bad(name: &str, message: String) -> ConfigError {
    ConfigError::Bad {
        name: format!("kafka.{name}"),
        origin: "configuration".into(),
        message,
    }
}

pub(super) fn reconcile(mut client: Vec<(String, String)>) -> Result<Reconciled, ConfigError> {
    let mut warnings = Vec::new();
    let acks = setting(&client, &["acks", "request.required.acks"])
        .map(|(k, v)| (k.to_string(), v.trim().to_ascii_lowercase()));
    let idempotence = match setting(&client, &["enable.idempotence"]) {
        None => None,
        Some((_, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            other => {
                return Err(bad(
                    "enable.idempotence",
                    format!("'{other}' is not true or false"),
                ))
            }
        },
    };
    let retries = setting(&client, &["retries", "message.send.max.retries"])
        .map(|(k, v)| (k.to_string(), v.trim().to_string()));
    let weak_acks = acks
        .as_ref()
        .filter(|(_, v)| v != "all" && v != "-1")
        .cloned();

    let mut idempotent = idempotence.unwrap_or(true);
    if let Some((name, value)) = &weak_acks {
        if idempotence == Some(true) {
            return Err(bad(
                name,
                format!("{name}={value} with kafka.enable.idempotence=true: the idempotent producer needs acks=all; remove one of the two"),
            ));
        }
        if idempotence.is_none() {
            idempotent = false;
            client.push(("enable.idempotence".into(), "false".into()));
            let cost = if value == "0" {
                "the broker acknowledges nothing, so a row the broker never received counts as delivered once sent and the stored position moves past it"
            } else {
                "a row the partition leader acknowledged is lost if the leader fails before a follower has copied it (the stored position has moved past it by then)"
            };
            warnings.push(format!(
                "kafka.{name}={value}: the idempotent producer needs acks=all, so idempotence is off. That costs two guarantees: \
                 {cost}; and a send librdkafka retries can be written twice, or out of order within a partition. \
                 Remove kafka.{name} (sluice's default is acks=all with idempotence) to keep both"
            ));
        }
    }
    if let Some((name, value)) = &retries {
        if value == "0" {
            if idempotent && idempotence == Some(true) {
                return Err(bad(
                    name,
                    format!("{name}=0 with kafka.enable.idempotence=true: the idempotent producer needs retries; remove one of the two"),
                ));
            }
            if idempotent {
                client.retain(|(k, _)| k != name);
                warnings.push(format!(
                    "kafka.{name}=0 is not passed on: the idempotent producer retries without writing a row twice or out of \
                     order (what retries=0 avoided in Maxwell's Java producer), and librdkafka refuses retries=0 with \
                     idempotence. Set kafka.enable.idempotence=false too to really send once"
                ));
            } else {
                warnings.push(format!(
                    "kafka.{name}=0: librdkafka does not retry a failed send; sluice then replaces the producer and sends \
                     again from the stored position, so a broker hiccup repeats rows (it never loses them)"
                ));
            }
        }
    }
    Ok(Reconciled { client, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn value<'a>(r: &'a Reconciled, key: &str) -> Option<&'a str> {
        setting(&r.client, &[key]).map(|(_, v)| v)
    }

    #[test]
    fn sluices_defaults_need_nothing() {
        let r = reconcile(kv(&[("bootstrap.servers", "k:9092")])).unwrap();
        assert!(r.warnings.is_empty());
        assert_eq!(r.client, kv(&[("bootstrap.servers", "k:9092")]));
        for acks in ["all", "-1", "ALL"] {
            let r = reconcile(kv(&[("acks", acks), ("retries", "3")])).unwrap();
            assert!(r.warnings.is_empty(), "{acks}: {:?}", r.warnings);
        }
    }

    #[test]
    fn maxwells_example_acks_1_retries_0_turns_idempotence_off_and_says_what_it_costs() {
        let r = reconcile(kv(&[("acks", "1"), ("retries", "0")])).unwrap();
        assert_eq!(value(&r, "enable.idempotence"), Some("false"));
        assert_eq!(value(&r, "retries"), Some("0"));
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(
            r.warnings[0].contains("kafka.acks=1") && r.warnings[0].contains("idempotence is off")
        );
        assert!(r.warnings[0].contains("lost if the leader fails"));
        assert!(
            r.warnings[1].contains("kafka.retries=0") && r.warnings[1].contains("repeats rows")
        );
        let r = reconcile(kv(&[("request.required.acks", "0")])).unwrap();
        assert!(
            r.warnings[0].contains("acknowledges nothing"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn retries_0_alone_keeps_idempotence_and_is_dropped() {
        let r = reconcile(kv(&[("retries", "0")])).unwrap();
        assert_eq!(value(&r, "retries"), None);
        assert_eq!(value(&r, "enable.idempotence"), None);
        assert!(r.warnings[0].contains("not passed on"), "{:?}", r.warnings);
        let r = reconcile(kv(&[("message.send.max.retries", "0")])).unwrap();
        assert_eq!(value(&r, "message.send.max.retries"), None);
    }

    #[test]
    fn explicit_contradictions_are_errors_naming_both() {
        for pairs in [
            kv(&[("acks", "1"), ("enable.idempotence", "true")]),
            kv(&[("retries", "0"), ("enable.idempotence", "true")]),
        ] {
            let e = reconcile(pairs).err().unwrap().to_string();
            assert!(e.contains("enable.idempotence=true"), "{e}");
        }
        assert!(reconcile(kv(&[("enable.idempotence", "maybe")])).is_err());
    }

    #[test]
    fn explicit_idempotence_off_takes_weak_acks_without_a_word() {
        let r = reconcile(kv(&[("acks", "1"), ("enable.idempotence", "false")])).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }
}
