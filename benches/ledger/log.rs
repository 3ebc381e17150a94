//! The generated log: whole-dealership scenarios (orders, payments, loans with their schedules,
//! policies with claims, workshop bookings, accounts) played once against a server of their own,
//! then copied with fresh ids until the log has the size asked for, plus a large stock of cars for
//! the catalog and three long streams for the aggregate-load figures. It is written in the format
//! of `autosalon export-events` and brought in by `import_events`, as an operator would.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use aggregates::money::{Currency, Money};
use aggregates::vehicle::{Condition, VehicleEvent};
use aggregates::vin::Vin;
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Size;

/// Aggregates copied once only: accounts and partner keys stand for the dealership's staff and
/// partners, and dealership events keep naming them as their actors.
const NOT_COPIED: [&str; 2] = ["User", "PartnerKey"];

/// Brands and models of the generated stock (a catalog filters by them).
const MODELS: [(&str, &[&str]); 6] = [
    ("Lada", &["Vesta", "Granta", "Niva", "Largus"]),
    ("Haval", &["Jolion", "F7", "Dargo"]),
    ("Chery", &["Tiggo 4", "Tiggo 7", "Tiggo 8"]),
    ("Geely", &["Coolray", "Monjaro", "Atlas"]),
    ("Kia", &["Rio", "Sportage", "K5"]),
    ("Toyota", &["Camry", "RAV4", "Corolla"]),
];

/// The generated log, ready to import.
pub struct Generated {
    pub file: tempfile::NamedTempFile,
    pub events: i64,
    pub scenario_events: i64,
    pub vehicles: usize,
    /// `(events, aggregate id)` of the long vehicle streams.
    pub streams: Vec<(usize, Uuid)>,
    /// A brand and model present in the catalog, for filters that match something.
    pub sample_model: (String, String),
}

/// What a log of the dealership holds: the aggregates a generated log must have events of.
pub const MIX: [&str; 6] = ["Order", "Payment", "Loan", "Policy", "Booking", "Vehicle"];

/// The events of a played scenario of `stories` stories, exported (one JSON object per event,
/// without the header). Seeds are tried in turn from the scenarios' base seed, at most `tries` of
/// them, until one reaches every aggregate of [`MIX`]; the last one played is kept either way.
pub async fn play_seed(stories: usize, tries: u64) -> Vec<Value> {
    let mut events = Vec::new();
    for n in 0..tries.max(1) {
        let seed = crate::scenario::base_seed() + n;
        let scenario = crate::scenario::generate(seed, stories..=stories);
        let played = crate::scenario::play(&scenario).await;
        let db = eventstore::Database::connect(&played.database_url())
            .await
            .expect("the played database opens");
        let mut out = Vec::new();
        autosalon::transfer::export_events(db.pool(), &mut out)
            .await
            .expect("the played log exports");
        db.close().await;
        events = out
            .split(|b| *b == b'\n')
            .skip(1)
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("an exported event"))
            .collect();
        let reached: HashSet<&str> = events
            .iter()
            .filter_map(|e: &Value| e["aggregate_type"].as_str())
            .collect();
        if MIX.iter().all(|a| reached.contains(a)) {
            break;
        }
    }
    events
}

/// A VIN of Russian assembly (no check digit), distinct for every `n`.
pub fn vin(n: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";
    let mut tail = String::new();
    let mut rest = n;
    for _ in 0..10 {
        tail.insert(0, ALPHABET[(rest % ALPHABET.len() as u64) as usize] as char);
        rest /= ALPHABET.len() as u64;
    }
    let vin = format!("XTA210{tail}B");
    debug_assert_eq!(vin.len(), 17);
    vin
}

/// Rewrites ids, VINs and policy numbers of one copy of the scenario.
struct Copy<'a> {
    number: u64,
    keep: &'a HashSet<Uuid>,
    vins: &'a HashMap<String, String>,
}

impl Copy<'_> {
    fn id(&self, id: Uuid) -> Uuid {
        if self.number == 0 || self.keep.contains(&id) {
            return id;
        }
        Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("{}:{id}", self.number).as_bytes(),
        )
    }

    fn text(&self, text: &str) -> String {
        if let Ok(id) = Uuid::parse_str(text)
            && text.len() == 36
        {
            return self.id(id).to_string();
        }
        if let Some(vin) = self.vins.get(text) {
            return vin.clone();
        }
        // Policy numbers end in their policy's id (see `aggregates::policy::policy_number`).
        if let Some((head, hex)) = text.rsplit_once('-')
            && text.starts_with("ASL-")
            && hex.len() == 32
            && let Ok(id) = Uuid::parse_str(hex)
        {
            return format!("{head}-{}", self.id(id).simple().to_string().to_uppercase());
        }
        text.to_string()
    }

    fn value(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.text(text)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, v)| (self.text(key), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Writes the log: `copies` of the scenario with extra cars in stock between them until the
/// catalog holds `size.catalog_vehicles`, then the long streams.
pub fn generate(seed: &[Value], size: &Size) -> Generated {
    let keep: HashSet<Uuid> = seed
        .iter()
        .filter(|e| NOT_COPIED.contains(&e["aggregate_type"].as_str().unwrap_or_default()))
        .filter_map(|e| Uuid::parse_str(e["aggregate_id"].as_str()?).ok())
        .collect();
    let copied: Vec<&Value> = seed
        .iter()
        .filter(|e| !NOT_COPIED.contains(&e["aggregate_type"].as_str().unwrap_or_default()))
        .collect();
    let seed_vins: Vec<String> = seed
        .iter()
        .filter(|e| e["event_type"] == "VehicleStocked")
        .filter_map(|e| Some(e["payload"]["VehicleStocked"]["vin"].as_str()?.to_string()))
        .collect();
    let metadata = seed
        .iter()
        .find(|e| e["event_type"] == "VehicleStocked")
        .map(|e| e["metadata"].clone())
        .expect("the scenario stocks a car");
    let recorded_at = seed.last().expect("events")["recorded_at"].clone();
    let copies = (size.log_events as usize)
        .div_ceil(copied.len().max(1))
        .max(1);
    let seed_vehicles = seed_vins.len() * copies;
    let extra_vehicles = size.catalog_vehicles.saturating_sub(seed_vehicles);
    let extra_per_copy = extra_vehicles.div_ceil(copies);

    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut out = std::io::BufWriter::new(file.as_file());
    let mut lines: Vec<String> = Vec::new();
    let mut position = 0i64;
    let mut next_vin = 0u64;
    let mut scenario_events = 0;
    let mut vehicles = 0;
    let mut emit = |event: Value, lines: &mut Vec<String>| {
        position += 1;
        let mut event = event;
        event["position"] = json!(position);
        lines.push(event.to_string());
    };
    let stock = |id: Uuid, n: u64, vin_text: String| -> Value {
        let (brand, models) = MODELS[(n % MODELS.len() as u64) as usize];
        let model = models[((n / MODELS.len() as u64) % models.len() as u64) as usize];
        let used = n.is_multiple_of(3);
        let event = VehicleEvent::VehicleStocked {
            vin: Vin::parse(&vin_text).expect("a generated VIN"),
            brand: brand.into(),
            model: model.into(),
            year: 2015 + (n % 11) as i32,
            trim: "Comfort".into(),
            colour: ["white", "black", "grey", "red"][(n % 4) as usize].into(),
            mileage_km: if used {
                10_000 + (n % 90) as u32 * 1_000
            } else {
                0
            },
            condition: if used {
                Condition::Used
            } else {
                Condition::New
            },
            location: format!("Lot {}", n % 12),
            list_price: Money::new(Decimal::from(900_000 + (n % 400) * 10_000), Currency::RUB)
                .expect("a price"),
            specifications: BTreeMap::from([("engine".into(), "1.6 petrol".into())]),
            stocked_at: chrono::Utc::now(),
        };
        json!({
            "aggregate_type": "Vehicle",
            "aggregate_id": id.to_string(),
            "sequence": 1,
            "event_type": event.event_type(),
            "event_version": event.event_version(),
            "payload": serde_json::to_value(&event).expect("serialises"),
        })
    };
    let with_common = |mut event: Value| {
        event["metadata"] = metadata.clone();
        event["recorded_at"] = recorded_at.clone();
        event
    };

    // The accounts once, then every copy of the rest.
    for event in seed
        .iter()
        .filter(|e| NOT_COPIED.contains(&e["aggregate_type"].as_str().unwrap_or_default()))
    {
        emit(event.clone(), &mut lines);
        scenario_events += 1;
    }
    for number in 0..copies as u64 {
        let vins: HashMap<String, String> = seed_vins
            .iter()
            .map(|seed_vin| {
                next_vin += 1;
                let new = if number == 0 {
                    seed_vin.clone()
                } else {
                    vin(next_vin)
                };
                (seed_vin.clone(), new)
            })
            .collect();
        let copy = Copy {
            number,
            keep: &keep,
            vins: &vins,
        };
        for event in &copied {
            let mut event = (*event).clone();
            if let Some(id) = event["aggregate_id"].as_str() {
                event["aggregate_id"] = Value::String(copy.text(id));
            }
            event["payload"] = copy.value(&event["payload"]);
            emit(event, &mut lines);
            scenario_events += 1;
        }
        vehicles += seed_vins.len();
        for _ in 0..extra_per_copy.min(size.catalog_vehicles.saturating_sub(vehicles)) {
            next_vin += 1;
            emit(
                with_common(stock(Uuid::now_v7(), next_vin, vin(next_vin))),
                &mut lines,
            );
            vehicles += 1;
        }
        for line in lines.drain(..) {
            writeln!(out, "{line}").expect("writes the log");
        }
    }
    let mut streams = Vec::new();
    for length in size.stream_lengths {
        let id = Uuid::now_v7();
        next_vin += 1;
        emit(with_common(stock(id, next_vin, vin(next_vin))), &mut lines);
        vehicles += 1;
        for sequence in 2..=length {
            let event = VehicleEvent::VehicleRelocated {
                from: format!("Bay {}", sequence - 1),
                to: format!("Bay {sequence}"),
            };
            emit(
                with_common(json!({
                    "aggregate_type": "Vehicle",
                    "aggregate_id": id.to_string(),
                    "sequence": sequence,
                    "event_type": event.event_type(),
                    "event_version": event.event_version(),
                    "payload": serde_json::to_value(&event).expect("serialises"),
                })),
                &mut lines,
            );
        }
        streams.push((length, id));
    }
    for line in lines.drain(..) {
        writeln!(out, "{line}").expect("writes the log");
    }
    out.flush().expect("writes the log");
    drop(out);
    let body = std::fs::read(file.path()).expect("reads the log back");
    let mut file_with_header = tempfile::NamedTempFile::new().expect("a temporary file");
    writeln!(
        file_with_header,
        "{}",
        json!({ "format": "autosalon-events", "version": 1, "events": position })
    )
    .expect("writes the header");
    file_with_header.write_all(&body).expect("writes the log");
    file_with_header.flush().expect("writes the log");
    let sample = MODELS[1];
    Generated {
        file: file_with_header,
        events: position,
        scenario_events,
        vehicles,
        streams,
        sample_model: (sample.0.to_string(), sample.1[0].to_string()),
    }
}
