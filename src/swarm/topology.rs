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
    /// Peers each member picks in larger rooms.
    pub picks: usize,
    /// The most connections a peer has. Not enforced peer by peer: because a pair's score
    /// is the same seen from either end, the peers that pick a peer are mostly the ones it
    /// picks, so degrees stay near k (21-22 at most for k = 10 in rooms of 100 to 3,000;
    /// the tests hold every room they build to this bound).
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

/// How `me` ranks `other`: a higher rank is picked first (the score, then the id, so no two
/// peers tie).
fn rank(salt: u64, me: PeerId, other: PeerId) -> (u64, PeerId) {
    (pair_score(salt, me, other), other)
}

/// The peers `me` picks among `members` (which may include `me`).
pub fn picks(cfg: &TopologyConfig, salt: u64, me: PeerId, members: &[PeerId]) -> Vec<PeerId> {
    let others = members.iter().copied().filter(|&p| p != me);
    if members.len() <= cfg.full_mesh_max {
        return others.collect();
    }
    let mut ranked: Vec<(u64, PeerId)> = others.map(|p| rank(salt, me, p)).collect();
    let k = cfg.picks.min(ranked.len());
    if k < ranked.len() {
        ranked.select_nth_unstable_by(k, |a, b| b.cmp(a));
        ranked.truncate(k);
    }
    ranked.into_iter().map(|(_, p)| p).collect()
}

/// Whether `other` picks `me`: fewer than k of its choices rank above `me`. Stops counting
/// at k, so for most peers (which rank `me` low) it looks at a few members only.
fn picked_by(
    cfg: &TopologyConfig,
    salt: u64,
    other: PeerId,
    me: PeerId,
    members: &[PeerId],
) -> bool {
    if members.len() <= cfg.full_mesh_max {
        return true;
    }
    let mine = rank(salt, other, me);
    let mut above = 0;
    for &q in members {
        if q != other && q != me && rank(salt, other, q) > mine {
            above += 1;
            if above >= cfg.picks {
                return false;
            }
        }
    }
    true
}

/// The peers `me` keeps connections with: those it picked and those that picked it. Both
/// ends of a pair compute the same answer from the same member list.
pub fn neighbours(
    cfg: &TopologyConfig,
    salt: u64,
    me: PeerId,
    members: &[PeerId],
) -> std::collections::BTreeSet<PeerId> {
    let mut chosen: std::collections::BTreeSet<PeerId> =
        picks(cfg, salt, me, members).into_iter().collect();
    for &p in members {
        if p != me && !chosen.contains(&p) && picked_by(cfg, salt, p, me, members) {
            chosen.insert(p);
        }
    }
    chosen
}

/// The whole graph, for tests: adjacency lists indexed like `members`, each peer's list its
/// `neighbours` (the graph the swarms build through `Input::Members`).
pub fn graph(cfg: &TopologyConfig, salt: u64, members: &[PeerId]) -> Vec<Vec<usize>> {
    let index: std::collections::HashMap<PeerId, usize> =
        members.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    members
        .iter()
        .map(|&me| {
            neighbours(cfg, salt, me, members)
                .iter()
                .map(|p| index[p])
                .collect()
        })
        .collect()
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
                    assert_eq!(
                        neighbours(&cfg, 9, a, &m).contains(&b),
                        neighbours(&cfg, 9, b, &m).contains(&a)
                    );
                }
            }
        }
    }
}
