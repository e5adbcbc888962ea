//! The grid assignment as a pure function over indices: merchants and
//! assistants are given by their region codes, the previous assignment by
//! assistant index, and the answer is an assistant index (or none) per
//! merchant. The rules it keeps and the moves it makes are listed in the
//! module documentation of `crate::grid`.

use std::collections::{BTreeSet, HashMap};

/// No assistant.
pub const NONE: u32 = u32::MAX;

/// A six-digit region code as bytes.
pub type Region = [u8; 6];

/// The groups of assistants that share a region code, and for each
/// distinct merchant region the groups that cover it, most specific first.
struct Groups {
    /// Members of each group, ascending by assistant index.
    members: Vec<Vec<u32>>,
    /// The group of each assistant.
    of_assistant: Vec<u32>,
    /// Covering groups of each distinct merchant region, most specific first.
    chains: Vec<Vec<u32>>,
    /// The index into `chains` of each merchant.
    region_of: Vec<u32>,
}

/// The codes that may cover `r`, most specific first: `r` with its last
/// `6 - len` digits set to zero, for `len` from 6 down to 0, each code once
/// (a code stands for the prefix without its trailing zeros).
fn covering_codes(r: &Region) -> impl Iterator<Item = Region> + '_ {
    let mut last: Option<Region> = None;
    (0..=6usize).rev().filter_map(move |len| {
        let mut c = *r;
        c[len..].fill(b'0');
        // The code's own prefix (without trailing zeros) must be a prefix of
        // `r`: it is, since the code agrees with `r` on its first `len` digits
        // and is zero after them.
        if last == Some(c) {
            None
        } else {
            last = Some(c);
            Some(c)
        }
    })
}

impl Groups {
    fn new(merchants: &[Region], assistants: &[Region]) -> Groups {
        let mut index: HashMap<Region, u32> = HashMap::new();
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut of_assistant = Vec::with_capacity(assistants.len());
        for (a, r) in assistants.iter().enumerate() {
            let g = *index.entry(*r).or_insert_with(|| {
                members.push(Vec::new());
                (members.len() - 1) as u32
            });
            members[g as usize].push(a as u32);
            of_assistant.push(g);
        }
        let mut regions: HashMap<Region, u32> = HashMap::new();
        let mut chains: Vec<Vec<u32>> = Vec::new();
        let region_of = merchants
            .iter()
            .map(|r| {
                *regions.entry(*r).or_insert_with(|| {
                    chains.push(
                        covering_codes(r)
                            .filter_map(|c| index.get(&c).copied())
                            .collect(),
                    );
                    (chains.len() - 1) as u32
                })
            })
            .collect();
        Groups {
            members,
            of_assistant,
            chains,
            region_of,
        }
    }

    fn chain(&self, m: u32) -> &[u32] {
        &self.chains[self.region_of[m as usize] as usize]
    }
}

/// The assignment under way.
struct State<'a> {
    g: &'a Groups,
    of: Vec<u32>,
    load: Vec<u32>,
    lists: Vec<Vec<u32>>,
    /// Per group: (load, assistant) of each member, to find the least loaded.
    by_load: Vec<BTreeSet<(u32, u32)>>,
    /// Per group: free places (capacity × members − their loads).
    free: Vec<u64>,
}

impl State<'_> {
    fn set_load(&mut self, a: u32, new: u32) {
        let grp = self.g.of_assistant[a as usize] as usize;
        let old = self.load[a as usize];
        self.by_load[grp].remove(&(old, a));
        self.by_load[grp].insert((new, a));
        self.free[grp] = self.free[grp] + u64::from(old) - u64::from(new);
        self.load[a as usize] = new;
    }

    fn put(&mut self, m: u32, a: u32) {
        self.of[m as usize] = a;
        self.lists[a as usize].push(m);
        self.set_load(a, self.load[a as usize] + 1);
    }

    fn take(&mut self, m: u32) {
        let a = self.of[m as usize];
        let list = &mut self.lists[a as usize];
        if let Some(i) = list.iter().position(|&x| x == m) {
            list.swap_remove(i);
        }
        self.of[m as usize] = NONE;
        self.set_load(a, self.load[a as usize] - 1);
    }

    /// The position of `m`'s group in its chain (0: most specific), or the
    /// chain's length when unassigned.
    fn rank(&self, m: u32) -> usize {
        let chain = self.g.chain(m);
        match self.of[m as usize] {
            NONE => chain.len(),
            a => {
                let grp = self.g.of_assistant[a as usize];
                chain.iter().position(|&x| x == grp).unwrap_or(chain.len())
            }
        }
    }

    /// Gives `m` to the least loaded member of the most specific group
    /// above rank `below` with a free place; whether it found one.
    fn place_above(&mut self, m: u32, below: usize) -> bool {
        let target = self.g.chain(m)[..below]
            .iter()
            .copied()
            .find(|&grp| self.free[grp as usize] > 0);
        let Some(grp) = target else {
            return false;
        };
        let &(_, a) = self.by_load[grp as usize]
            .first()
            .expect("a group with a free place has members");
        if self.of[m as usize] != NONE {
            self.take(m);
        }
        self.put(m, a);
        true
    }

    /// Evens out the loads within each group with the fewest moves: the
    /// `r` most loaded members keep `q + 1`, the others `q`, where the
    /// group's load is `q × members + r`; a member above its share gives
    /// its merchants of highest index to the members below theirs.
    fn balance(&mut self) {
        for grp in 0..self.g.members.len() {
            let members = &self.g.members[grp];
            let total: u64 = members
                .iter()
                .map(|&a| u64::from(self.load[a as usize]))
                .sum();
            let k = members.len() as u64;
            let (q, r) = ((total / k) as u32, (total % k) as usize);
            let mut order: Vec<u32> = members.clone();
            order.sort_by_key(|&a| (std::cmp::Reverse(self.load[a as usize]), a));
            let target = |i: usize| if i < r { q + 1 } else { q };
            // (member, places short), filled in order.
            let mut receivers = order
                .iter()
                .enumerate()
                .filter(|&(i, &a)| self.load[a as usize] < target(i))
                .map(|(i, &a)| (a, target(i) - self.load[a as usize]))
                .collect::<Vec<_>>()
                .into_iter();
            let mut receiver = receivers.next();
            for (i, &a) in order.iter().enumerate() {
                let excess = self.load[a as usize].saturating_sub(target(i));
                let mut list = self.lists[a as usize].clone();
                list.sort_unstable();
                for &m in list.iter().rev().take(excess as usize) {
                    let Some((to, short)) = receiver.as_mut() else {
                        break;
                    };
                    let to = *to;
                    *short -= 1;
                    if *short == 0 {
                        receiver = receivers.next();
                    }
                    self.take(m);
                    self.put(m, to);
                }
            }
        }
    }
}

/// Assigns each merchant (given by region, in the order that breaks ties:
/// callers pass merchants ascending by id) an assistant (by region,
/// ascending by id) whose region covers it, at most `capacity` each,
/// starting from `previous` (an assistant index per merchant, [`NONE`] for
/// none; an index out of range counts as none). Returns an assistant index
/// per merchant, [`NONE`] for unassigned.
pub fn assign(
    merchants: &[Region],
    assistants: &[Region],
    capacity: u32,
    previous: &[u32],
) -> Vec<u32> {
    let g = Groups::new(merchants, assistants);
    let n = merchants.len();
    let mut s = State {
        g: &g,
        of: vec![NONE; n],
        load: vec![0; assistants.len()],
        lists: vec![Vec::new(); assistants.len()],
        by_load: vec![BTreeSet::new(); g.members.len()],
        free: vec![0; g.members.len()],
    };
    // 1. Keep every previous assignment that is still allowed.
    for m in 0..n as u32 {
        let a = previous.get(m as usize).copied().unwrap_or(NONE);
        if (a as usize) < assistants.len() && g.chain(m).contains(&g.of_assistant[a as usize]) {
            s.of[m as usize] = a;
            s.lists[a as usize].push(m);
            s.load[a as usize] += 1;
        }
    }
    // 2. Above capacity (it was lowered): keep the merchants of lowest index.
    for a in 0..assistants.len() {
        if s.load[a] > capacity {
            let list = &mut s.lists[a];
            list.sort_unstable();
            for m in list.split_off(capacity as usize) {
                s.of[m as usize] = NONE;
            }
            s.load[a] = capacity;
        }
    }
    for (grp, members) in g.members.iter().enumerate() {
        for &a in members {
            s.by_load[grp].insert((s.load[a as usize], a));
            s.free[grp] += u64::from(capacity - s.load[a as usize]);
        }
    }
    // 3. Until nothing changes: give each merchant without an assistant,
    //    in index order, to the most specific covering group with a free
    //    place; then move each merchant kept in a broader group than a
    //    covering group with a free place into that group (a place comes
    //    free in a group when an assistant joins it, a merchant leaves it
    //    or the capacity grows). New merchants are placed first, so they
    //    take free places before anyone is moved into them.
    loop {
        let mut changed = false;
        for m in 0..n as u32 {
            if s.of[m as usize] == NONE && s.place_above(m, g.chain(m).len()) {
                changed = true;
            }
        }
        for m in 0..n as u32 {
            if s.of[m as usize] != NONE {
                let rank = s.rank(m);
                if rank > 0 && s.place_above(m, rank) {
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    // 4. Even out the loads within each group.
    s.balance();
    s.of
}
