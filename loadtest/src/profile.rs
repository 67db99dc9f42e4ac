//! Load profiles: how many shoppers, how fast they arrive, for how long.
//!
//! The journeys are a closed model: each simulated shopper runs one journey after another, with a
//! think time of [`Profile::think`] between steps. The arrival rate of journeys is therefore
//! proportional to the number of shoppers, and `black-friday` (10× the shoppers of `normal`, with
//! the same think time) is 10× normal's arrival rate.

use std::time::Duration;

/// One load profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name.
    pub name: &'static str,
    /// Simulated shoppers (and admins) at full load.
    pub users: usize,
    /// How long the shoppers take to arrive, from none to all.
    pub ramp_up: Duration,
    /// How long the full load holds.
    pub hold: Duration,
    /// How long the shoppers take to leave.
    pub ramp_down: Duration,
    /// The think time between two steps of a journey, drawn between these.
    pub think: (Duration, Duration),
}

const THINK: (Duration, Duration) = (Duration::from_millis(1_000), Duration::from_millis(3_000));

impl Profile {
    /// Every profile, by name.
    pub const NAMES: [&'static str; 3] = ["smoke", "normal", "black-friday"];

    /// An ordinary day: 300 shoppers (about 130 requests/s), ramped up over 15 s, held 60 s.
    pub fn normal() -> Self {
        Self {
            name: "normal",
            users: 300,
            ramp_up: Duration::from_secs(15),
            hold: Duration::from_secs(60),
            ramp_down: Duration::from_secs(5),
            think: THINK,
        }
    }

    /// Black Friday: 10× normal's shoppers and so 10× its arrival rate, ramped over 60 s and held
    /// for two minutes.
    pub fn black_friday() -> Self {
        let normal = Self::normal();
        Self {
            name: "black-friday",
            users: normal.users * 10,
            ramp_up: Duration::from_secs(60),
            hold: Duration::from_secs(120),
            ramp_down: Duration::from_secs(10),
            think: THINK,
        }
    }

    /// A short run for the test suite: every journey, tens of seconds.
    pub fn smoke() -> Self {
        Self {
            name: "smoke",
            users: 20,
            ramp_up: Duration::from_secs(2),
            hold: Duration::from_secs(20),
            ramp_down: Duration::from_secs(1),
            think: (Duration::from_millis(200), Duration::from_millis(600)),
        }
    }

    /// The profile called `name`.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "smoke" => Some(Self::smoke()),
            "normal" => Some(Self::normal()),
            "black-friday" | "black_friday" => Some(Self::black_friday()),
            _ => None,
        }
    }

    /// Goose's test plan: ramp up, hold, ramp down (`users,time;…`).
    pub fn test_plan(&self) -> String {
        // Goose takes whole seconds.
        let s = |d: Duration| d.as_secs().max(1);
        format!(
            "{users},{up}s;{users},{hold}s;0,{down}s",
            users = self.users,
            up = s(self.ramp_up),
            hold = s(self.hold),
            down = s(self.ramp_down)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_friday_is_ten_times_normal_arrivals() {
        let (normal, peak) = (Profile::normal(), Profile::black_friday());
        assert_eq!(peak.users, 10 * normal.users);
        assert_eq!(peak.think, normal.think, "the same think time, so arrivals scale with shoppers");
    }

    #[test]
    fn profiles_are_found_by_name_and_give_goose_plans() {
        for name in Profile::NAMES {
            assert_eq!(Profile::named(name).unwrap().name, name);
        }
        assert!(Profile::named("cyber-monday").is_none());
        assert_eq!(Profile::normal().test_plan(), "300,15s;300,60s;0,5s");
        assert_eq!(Profile::smoke().test_plan(), "20,2s;20,20s;0,1s", "23 s in all");
    }
}
