//! Which peers to connect to.
//!
//! Small rooms (up to `full_mesh_max` members) are a full mesh. Larger rooms use a random
//! graph built by rendezvous hashing: every peer ranks the others by a symmetric hash of the
//! pair and keeps its top `k`; a connection exists when either side picked the other. Both
//! ends compute the same scores, so no coordination is needed, churn only moves the edges of
//! the peers that joined or left, and the union of k random choices per node is an expander:
//! connected with a small diameter for k >= 3 (tests/swarm_sim.rs measures both, and the
//! benchmark shows completion close to the bound with it). GenosRTC's cellular mesh reaches
//! the same bounded degree with more structure (cells, bridges); a random expander needs no
//! cell bookkeeping and has no bridge peers whose departure cuts cells apart.

use super::PeerId;
use super::rng::mix;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopologyConfig {
    /// Rooms up to this size are a full mesh.
    pub full_mesh_max: usize,
    /// Peers each member picks in larger rooms (degree is about 2k, capped at `max_degree`).
    pub picks: usize,
    /// Hard cap on connections per peer; extra inbound picks are refused.
    pub max_degree: usize,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        Self {
            full_mesh_max: 24,
            picks: 10,
            max_degree: 30,
        }
    }
}

/// Symmetric pair score, salted per room so rooms get different graphs.
pub fn pair_score(salt: u64, a: PeerId, b: PeerId) -> u64 {
    let (lo, hi) = if a.0 < b.0 { (a.0, b.0) } else { (b.0, a.0) };
    mix(salt ^ mix(lo) ^ mix(hi).rotate_left(17))
}

/// The peers `me` picks among `members` (which may include `me`).
pub fn picks(cfg: &TopologyConfig, salt: u64, me: PeerId, members: &[PeerId]) -> Vec<PeerId> {
    let others = members.iter().copied().filter(|&p| p != me);
    if members.len() <= cfg.full_mesh_max {
        return others.collect();
    }
    let mut scored: Vec<(u64, PeerId)> = others.map(|p| (pair_score(salt, me, p), p)).collect();
    let k = cfg.picks.min(scored.len());
    if k < scored.len() {
        scored.select_nth_unstable_by(k, |a, b| b.0.cmp(&a.0));
        scored.truncate(k);
    }
    scored.into_iter().map(|(_, p)| p).collect()
}

/// Whether `me` should keep a connection with `other`: either side picked the other.
pub fn wants(
    cfg: &TopologyConfig,
    salt: u64,
    me: PeerId,
    other: PeerId,
    members: &[PeerId],
) -> bool {
    picks(cfg, salt, me, members).contains(&other) || picks(cfg, salt, other, members).contains(&me)
}

/// The whole graph, for simulation and tests: adjacency lists indexed like `members`.
pub fn graph(cfg: &TopologyConfig, salt: u64, members: &[PeerId]) -> Vec<Vec<usize>> {
    let index: std::collections::HashMap<PeerId, usize> =
        members.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    let mut adj: Vec<std::collections::BTreeSet<usize>> = vec![Default::default(); members.len()];
    for (i, &me) in members.iter().enumerate() {
        for p in picks(cfg, salt, me, members) {
            let j = index[&p];
            adj[i].insert(j);
            adj[j].insert(i);
        }
    }
    // Enforce the degree cap: a peer over the cap refuses its lowest-scoring inbound links
    // and keeps its own picks, so every peer keeps at least its k choices minus refusals.
    for i in 0..members.len() {
        if adj[i].len() <= cfg.max_degree {
            continue;
        }
        let own: std::collections::HashSet<usize> = picks(cfg, salt, members[i], members)
            .iter()
            .map(|p| index[p])
            .collect();
        let mut extra: Vec<usize> = adj[i]
            .iter()
            .copied()
            .filter(|j| !own.contains(j))
            .collect();
        extra.sort_by_key(|&j| pair_score(salt, members[i], members[j]));
        for j in extra.into_iter().take(adj[i].len() - cfg.max_degree) {
            adj[i].remove(&j);
            adj[j].remove(&i);
        }
    }
    adj.into_iter().map(|s| s.into_iter().collect()).collect()
}

/// Breadth-first eccentricity from node 0 and whether every node is reached.
pub fn diameter_from_first(adj: &[Vec<usize>]) -> (bool, usize) {
    if adj.is_empty() {
        return (true, 0);
    }
    let mut dist = vec![usize::MAX; adj.len()];
    let mut queue = std::collections::VecDeque::from([0]);
    dist[0] = 0;
    while let Some(u) = queue.pop_front() {
        for &v in &adj[u] {
            if dist[v] == usize::MAX {
                dist[v] = dist[u] + 1;
                queue.push_back(v);
            }
        }
    }
    let reached = dist.iter().all(|&d| d != usize::MAX);
    (
        reached,
        dist.into_iter()
            .filter(|&d| d != usize::MAX)
            .max()
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u64) -> Vec<PeerId> {
        (1..=n).map(|i| PeerId(i * 7919)).collect()
    }

    #[test]
    fn small_rooms_are_a_full_mesh() {
        let cfg = TopologyConfig::default();
        let m = members(10);
        let adj = graph(&cfg, 1, &m);
        assert!(adj.iter().all(|n| n.len() == 9));
    }

    #[test]
    fn large_rooms_are_connected_with_bounded_degree_and_small_diameter() {
        let cfg = TopologyConfig::default();
        for (n, salt) in [(100, 1), (1000, 2), (1000, 3), (3000, 4)] {
            let m = members(n);
            let adj = graph(&cfg, salt, &m);
            let max_degree = adj.iter().map(Vec::len).max().unwrap();
            let (connected, ecc) = diameter_from_first(&adj);
            assert!(connected, "n={n} not connected");
            assert!(max_degree <= cfg.max_degree, "n={n} degree {max_degree}");
            assert!(ecc <= 5, "n={n} eccentricity {ecc}");
        }
    }

    #[test]
    fn both_ends_agree() {
        let cfg = TopologyConfig::default();
        let m = members(200);
        for &a in &m[..20] {
            for &b in &m[..20] {
                if a != b {
                    assert_eq!(wants(&cfg, 9, a, b, &m), wants(&cfg, 9, b, a, &m));
                }
            }
        }
    }
}
