//! Append-only streams with consumer groups, as Redis has them (XADD, XREADGROUP, XACK,
//! XAUTOCLAIM), for the in-process store: the embedded default gets the same delivery
//! semantics as a deployment on Redis, so one consumer loop serves both.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One entry of a stream: its id (`<ms>-<seq>`) and its field-value pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: String,
    pub fields: Vec<(String, String)>,
}

impl StreamEntry {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a consumer group stands: the last entry handed out, and the entries handed out
/// but not yet acknowledged (oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupState {
    pub last_delivered: Option<String>,
    pub pending: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
struct Id(u64, u64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

impl Id {
    fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }
}

struct Delivery {
    consumer: String,
    at: Instant,
}

#[derive(Default)]
struct Group {
    last_delivered: Id,
    pending: BTreeMap<Id, Delivery>,
}

/// A stream held in memory.
#[derive(Default)]
pub struct MemoryStream {
    entries: BTreeMap<Id, Vec<(String, String)>>,
    last: Id,
    groups: HashMap<String, Group>,
}

impl MemoryStream {
    /// XADD with an automatic id: milliseconds since the epoch, then a sequence number.
    pub fn add(&mut self, fields: Vec<(String, String)>) -> String {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let id = if ms > self.last.0 {
            Id(ms, 0)
        } else {
            Id(self.last.0, self.last.1 + 1)
        };
        self.last = id;
        self.entries.insert(id, fields);
        id.to_string()
    }

    fn entry(&self, id: Id) -> Option<StreamEntry> {
        self.entries.get(&id).map(|fields| StreamEntry {
            id: id.to_string(),
            fields: fields.clone(),
        })
    }

    /// XREADGROUP … `>`: up to `count` entries never delivered to the group, now pending
    /// for `consumer`. The group is created at the stream's start when missing.
    pub fn read_group(
        &mut self,
        group: &str,
        consumer: &str,
        count: usize,
        now: Instant,
    ) -> Vec<StreamEntry> {
        let g = self.groups.entry(group.to_owned()).or_default();
        let ids: Vec<Id> = self
            .entries
            .range((
                std::ops::Bound::Excluded(g.last_delivered),
                std::ops::Bound::Unbounded,
            ))
            .take(count)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            g.last_delivered = *id;
            g.pending.insert(
                *id,
                Delivery {
                    consumer: consumer.to_owned(),
                    at: now,
                },
            );
        }
        ids.into_iter().filter_map(|id| self.entry(id)).collect()
    }

    /// XAUTOCLAIM from the start: up to `count` pending entries idle at least `min_idle`
    /// pass to `consumer`. Entries deleted meanwhile leave the pending list.
    pub fn claim_idle(
        &mut self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
        now: Instant,
    ) -> Vec<StreamEntry> {
        let Some(g) = self.groups.get_mut(group) else {
            return Vec::new();
        };
        let idle: Vec<Id> = g
            .pending
            .iter()
            .filter(|(_, d)| now.saturating_duration_since(d.at) >= min_idle)
            .take(count)
            .map(|(id, _)| *id)
            .collect();
        let mut claimed = Vec::new();
        for id in idle {
            if !self.entries.contains_key(&id) {
                g.pending.remove(&id);
                continue;
            }
            g.pending.insert(
                id,
                Delivery {
                    consumer: consumer.to_owned(),
                    at: now,
                },
            );
            claimed.push(id);
        }
        claimed
            .into_iter()
            .filter_map(|id| self.entry(id))
            .collect()
    }

    /// XACK: returns how many of `ids` were pending.
    pub fn ack(&mut self, group: &str, ids: &[String]) -> u64 {
        let Some(g) = self.groups.get_mut(group) else {
            return 0;
        };
        ids.iter()
            .filter_map(|id| Id::parse(id))
            .filter(|id| g.pending.remove(id).is_some())
            .count() as u64
    }

    /// XRANGE - +.
    pub fn entries(&self) -> Vec<StreamEntry> {
        self.entries
            .keys()
            .filter_map(|id| self.entry(*id))
            .collect()
    }

    /// The group's position and pending list; `None` when there is no such group.
    pub fn group(&self, group: &str) -> Option<GroupState> {
        let g = self.groups.get(group)?;
        Some(GroupState {
            last_delivered: (g.last_delivered != Id::default())
                .then(|| g.last_delivered.to_string()),
            pending: g.pending.keys().map(Id::to_string).collect(),
        })
    }

    /// Which consumer holds a pending entry (for tests of claiming).
    pub fn holder(&self, group: &str, id: &str) -> Option<&str> {
        let id = Id::parse(id)?;
        self.groups
            .get(group)?
            .pending
            .get(&id)
            .map(|d| d.consumer.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(n: u32) -> Vec<(String, String)> {
        vec![("n".into(), n.to_string())]
    }

    #[test]
    fn ids_increase_within_a_millisecond() {
        let mut s = MemoryStream::default();
        let ids: Vec<Id> = (0..100)
            .map(|n| Id::parse(&s.add(fields(n))).expect("id"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_group_delivers_each_entry_once_until_it_is_claimed() {
        let mut s = MemoryStream::default();
        for n in 0..5 {
            s.add(fields(n));
        }
        let start = Instant::now();
        let a = s.read_group("g", "a", 3, start);
        let b = s.read_group("g", "b", 10, start);
        assert_eq!((a.len(), b.len()), (3, 2));
        assert!(s.read_group("g", "b", 10, start).is_empty());
        assert_eq!(s.ack("g", &[b[0].id.clone(), b[0].id.clone()]), 1);
        // Not idle long enough yet.
        let soon = start + Duration::from_millis(10);
        assert!(
            s.claim_idle("g", "c", Duration::from_secs(1), 10, soon)
                .is_empty()
        );
        let later = start + Duration::from_secs(2);
        let claimed = s.claim_idle("g", "c", Duration::from_secs(1), 10, later);
        assert_eq!(claimed.len(), 4, "a's three and b's unacknowledged one");
        assert_eq!(s.holder("g", &a[0].id), Some("c"));
        let state = s.group("g").expect("group");
        assert_eq!(state.pending.len(), 4);
        assert_eq!(state.last_delivered, Some(b[1].id.clone()));
        assert_eq!(s.entries().len(), 5);
    }
}
